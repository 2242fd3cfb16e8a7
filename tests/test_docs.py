"""Every ``python`` block of the README and of ``docs/*.md`` runs, and every declared ``bash`` block; every relative
link names a file that exists; no page repeats another's paragraph.

A block runs as written unless the HTML comment on the line right before it
declares otherwise (docs/development.md, "Code in the documentation"):

* ``<!-- test: "old" -> "new", ... -->``: replace each text before running,
  to shrink sizes and step counts; a text that does not occur in the block
  fails the test, so a declaration cannot outlive the code it shrinks;
* ``<!-- test: continues -->`` (optionally ``continues; "old" -> "new"``):
  run after the page's previous ``python`` block, as one script;
* ``<!-- test: skip (reason) -->``: leave the block out; the reason is required.

A ``bash`` block runs only when declared (with its substitutions: a tiny
``--steps``), as one ``bash -e`` script in an empty folder that links
``examples/`` and holds a few photos; undeclared ones (installs, cluster
scripts) are shown, not run.

Each block runs as a script of its own in an empty folder (a new Accelerate
state, one torch thread), then the state it leaves is checked: the network it
saved, the trainer's run folder, the embeddings' shape.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from .conftest import reset_accelerate_state

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
# At most three spaces before it: four make an indented code block, which shows a declaration, not makes one.
_DECLARATION = re.compile(r"^ {0,3}<!--\s*test:(.*?)-->\s*$")
_STRING = r'"((?:[^"\\]|\\.)*)"'
_SUBSTITUTION = re.compile(rf"\s*{_STRING}\s*->\s*{_STRING}\s*(,|$)")
_SKIP = re.compile(r"skip\s*\((.*)\)\s*$", re.DOTALL)


class DeclarationError(ValueError):
    """A ``<!-- test: ... -->`` comment that cannot be read or no longer fits its block."""


@dataclass(frozen=True)
class Block:
    """A fenced code block of a page, with what its declaration says about running it."""

    page: Path
    line: int  # of the opening fence, counting from 1
    language: str
    source: str
    substitutions: tuple[tuple[str, str], ...] = ()
    continues: bool = False
    skip: str | None = None

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page.name}:{self.line}"


def parse_declaration(text: str, where: str) -> tuple[tuple[tuple[str, str], ...], bool, str | None]:
    """``(substitutions, continues, skip reason)`` of the text between ``test:`` and ``-->``."""
    body = text.strip()
    if body.startswith("skip"):
        match = _SKIP.fullmatch(body)
        if not match or not match.group(1).strip():
            raise DeclarationError(f"{where}: 'skip' needs its reason in brackets: skip (why), got {body!r}")
        return (), False, match.group(1).strip()
    continues = body.startswith("continues")
    rest = body[len("continues"):].strip() if continues else body
    if continues and rest:
        if not rest.startswith(";"):
            raise DeclarationError(f"{where}: expected ';' after 'continues', got {rest!r}")
        rest = rest[1:]
    substitutions: list[tuple[str, str]] = []
    position = 0
    while rest[position:].strip():
        match = _SUBSTITUTION.match(rest, position)
        if not match:
            raise DeclarationError(f'{where}: expected "old" -> "new" at {rest[position:]!r}')
        old, new = (json.loads(f'"{text}"') for text in match.group(1, 2))
        if not old:
            raise DeclarationError(f"{where}: an empty text to replace")
        substitutions.append((old, new))
        position = match.end()
        if match.group(3) == "," and not rest[position:].strip():
            raise DeclarationError(f"{where}: a trailing ','")
    if not continues and not substitutions:
        raise DeclarationError(f"{where}: an empty declaration (no block needs one to run as written)")
    return tuple(substitutions), continues, None


def page_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, each with its declaration; a declaration not right before a
    ``python`` block is an error."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    declared: set[int] = set()
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        indent, language = len(fence.group(1)), fence.group(2)
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise DeclarationError(f"{page.name}:{index + 1}: a code block that is never closed")
        source = "\n".join(line[indent:] for line in lines[index + 1:end]) + "\n"
        block = Block(page, index + 1, language, source)
        declaration = _DECLARATION.match(lines[index - 1]) if index else None
        if declaration:
            declared.add(index - 1)
            if language not in ("python", "bash"):
                raise DeclarationError(f"{block.name}: a test declaration before a {language or 'plain'} block")
            substitutions, continues, skip = parse_declaration(declaration.group(1), block.name)
            block = Block(page, index + 1, language, source, substitutions, continues, skip)
        blocks.append(block)
        index = end + 1
    for number, line in enumerate(lines):
        if _DECLARATION.match(line) and number not in declared and not _inside(blocks, number + 1):
            raise DeclarationError(f"{page.name}:{number + 1}: a test declaration not right before a code block")
    return blocks


def _inside(blocks: list[Block], line: int) -> bool:
    return any(block.line < line <= block.line + block.source.count("\n") for block in blocks)


def python_blocks(page: Path) -> list[Block]:
    return [block for block in page_blocks(page) if block.language == "python"]


def _substituted(block: Block) -> str:
    source = block.source
    for old, new in block.substitutions:
        if old not in source:
            raise DeclarationError(f"{block.name}: the declared {old!r} does not occur in the block")
        source = source.replace(old, new)
    return source


def script(block: Block) -> str:
    """The code a block runs as: its own, shrunk as declared, after the block it continues."""
    if block.skip is not None:
        raise DeclarationError(f"{block.name}: skipped ({block.skip}), so it has no script")
    own = _substituted(block)
    if not block.continues:
        return own
    before = [b for b in python_blocks(block.page) if b.line < block.line]
    if not before:
        raise DeclarationError(f"{block.name}: 'continues', but no python block comes before it on its page")
    if before[-1].skip is not None:
        raise DeclarationError(f"{block.name}: continues {before[-1].name}, which is skipped")
    return script(before[-1]) + "\n" + own


def _readable_blocks() -> list[Block]:
    """The python blocks of every page whose declarations read (the others fail the test below, not collection)."""
    blocks = []
    for page in PAGES:
        try:
            blocks += python_blocks(page)
        except DeclarationError:
            pass
    return blocks


ALL_PYTHON = _readable_blocks()
RUN = [block for block in ALL_PYTHON if block.skip is None]


def _declared_shell_blocks() -> list[Block]:
    blocks = []
    for page in PAGES:
        try:
            blocks += [b for b in page_blocks(page) if b.language == "bash" and b.substitutions and b.skip is None]
        except DeclarationError:
            pass
    return blocks


SHELL_RUN = _declared_shell_blocks()


# --- the declarations -------------------------------------------------------------------------------------------

def test_every_declaration_reads_and_fits_its_block() -> None:
    blocks = [block for page in PAGES for block in python_blocks(page)]  # raises on a declaration it cannot read
    assert len(blocks) >= 10
    for block in blocks:
        if block.skip is None:
            compile(script(block), block.name, "exec")  # raises on a declared text that does not occur


def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page


@pytest.mark.parametrize(("text", "message"), [
    ('<!-- test: "resnet50" -> "resnet18" -->\n```python\nnet = resnet34()\n```\n', "does not occur"),
    ('<!-- test: skip -->\n```python\nimport cuda\n```\n', "needs its reason"),
    ('<!-- test: skip () -->\n```python\nimport cuda\n```\n', "needs its reason"),
    ('<!-- test: "256" -> "32" -->\n```text\nbyol-pytorch train --image-size 256\n```\n', "before a text block"),
    ('<!-- test: "256" => "32" -->\n```python\nx = 256\n```\n', "expected"),
    ('<!-- test: "256" -> "32", -->\n```python\nx = 256\n```\n', "trailing"),
    ("<!-- test: -->\n```python\nx = 1\n```\n", "empty declaration"),
    ('<!-- test: continues -->\n```python\nprint(x)\n```\n', "no python block comes before"),
    ('<!-- test: "256" -> "32" -->\n\n```python\nx = 256\n```\n', "not right before"),
])
def test_a_declaration_that_does_not_fit_fails(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DeclarationError, match=message):
        for block in python_blocks(_page(tmp_path, text)):
            script(block)


def test_a_declaration_shrinks_its_block_and_a_continuation_runs_after_it(tmp_path: Path) -> None:
    page = _page(tmp_path, '<!-- test: "range(100)" -> "range(2)", "\\"a\\"" -> "\'b\'" -->\n'
                           '```python\nsteps = list(range(100))\nname = "a"\n```\n\ntext\n\n'
                           '<!-- test: continues; "len(steps)" -> "len(steps) * 3" -->\n'
                           '```python\ny = len(steps)\n```\n\n'
                           "    <!-- test: shown, not declared -->\n\n"
                           '<!-- test: skip (needs a GPU) -->\n```python\ntorch.cuda.init()\n```\n')
    first, second, third = python_blocks(page)
    assert script(first) == "steps = list(range(2))\nname = 'b'\n"
    namespace: dict = {}
    exec(script(second), namespace)  # noqa: S102 - a test's own snippet
    assert namespace["y"] == 6 and third.skip == "needs a GPU"


# --- running the blocks -----------------------------------------------------------------------------------------

def _photos(folder: Path, count: int = 8) -> None:
    from PIL import Image

    folder.mkdir()
    for i in range(count):
        Image.new("RGB", (48 + i, 36), (30 * i, 100, 200)).save(folder / f"{i}.jpg")


def _tiny_run(run: Path) -> None:
    from byol_pytorch.cli import main

    code = main(["train", "--data", "photos", "--steps", "1", "--batch-size", "4", "--image-size", "16",
                 "--projection-hidden-size", "16", "--num-workers", "0", "--no-final-eval", "--no-progress",
                 "--threads", "1", "--out", str(run)])
    assert code == 0 and (run / "net.pt").is_file()


def _saved_network(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, weights_only=True)
    assert state and all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), path
    return state


def _check_saved_loop_network(source: str, namespace: dict, folder: Path) -> None:
    assert set(_saved_network(folder / "improved-net.pt")) == set(namespace["net"].state_dict())


def _check_run_folders(source: str, namespace: dict, folder: Path) -> None:
    named = re.findall(r"(?:output_dir|checkpoint_folder)=['\"]([^'\"]+)['\"]", source)
    for run in named or ["./checkpoints"]:  # BYOLTrainer's default output_dir
        assert (folder / run / "net.safetensors").exists(), run
        assert set(_saved_network(folder / run / "net.pt")) == set(namespace["trainer"].net.state_dict()), run


def _check_embedding(source: str, namespace: dict, folder: Path) -> None:
    assert namespace["embedding"].shape == (20, 512)  # 20 images, a ResNet-18's avgpool
    assert namespace["projection"].shape == (20, 256)


def _check_features(source: str, namespace: dict, folder: Path) -> None:
    assert namespace["bank_x"].shape == (len(namespace["bank"]), 512) and not namespace["bank_x"].requires_grad


# What a block leaves, checked after every block whose code has the marker.
def _check_own_records(source: str, namespace: dict, folder: Path) -> None:
    """The callback's record of every step is in metrics.jsonl, beside the loss."""
    (run,) = re.findall(r"output_dir=['\"]([^'\"]+)['\"]", source)
    records = [json.loads(line) for line in (folder / run / "metrics.jsonl").read_text().splitlines()]
    steps = namespace["config"].num_train_steps
    assert [r["step"] for r in records if "weight_norm" in r] == list(range(1, steps + 1))
    assert all(r["weight_norm"] > 0 for r in records if "weight_norm" in r)


CHECKS = {
    "callbacks=[": _check_own_records,
    "torch.save(net.state_dict(), './improved-net.pt')": _check_saved_loop_network,
    "BYOLTrainer(": _check_run_folders,
    "return_projection=False": _check_embedding,
    "extract_features(": _check_features,
}


def test_every_check_has_blocks_to_check() -> None:
    for marker in CHECKS:
        assert any(marker in script(block) for block in RUN), marker
    runs = " ".join(script(block) for block in RUN)
    assert "checkpoint_folder='./byol-run'" in runs  # byol-pytorch 0.9's keyword, in docs/migrating.md
    assert "checkpoint_every=1000,             # full state + net.pt under ./checkpoints" in runs


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a block's few small steps gain nothing from more, and lose much on busy cores
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("block", RUN, ids=lambda block: block.name)
def test_block_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread) -> None:
    monkeypatch.chdir(tmp_path)
    _photos(tmp_path / "photos")  # the folder the photo-folder blocks read
    code = script(block)
    # Each block is a script of its own: a new process, so a new Accelerator state.
    reset_accelerate_state()
    if "'runs/mine'" in code:  # the run folder the after-training blocks load: one tiny run on the photos
        _tiny_run(tmp_path / "runs" / "mine")
        reset_accelerate_state()
    namespace: dict = {"__name__": "__main__"}
    try:
        exec(compile(code, str(block.page), "exec"), namespace)  # noqa: S102 - our own docs
    finally:
        reset_accelerate_state()
    for marker, check in CHECKS.items():
        if marker in code:
            check(code, namespace, tmp_path)


def test_the_evaluation_block_leaves_the_network_as_it_was(one_thread) -> None:
    """The evaluation block on a ResNet-18 in training mode (one stage frozen): every tensor bit-identical."""
    from torchvision import models

    from byol_pytorch import BYOL

    block = next(b for b in RUN if "extract_features(" in b.source)
    own_learner = ("learner = BYOL(models.resnet50(), image_size=64, hidden_layer='avgpool')"
                   "   # the learner you trained\n")
    assert own_learner in block.source
    code = block.source.replace(own_learner, "").replace("DigitsDataset(64,", "DigitsDataset(16,")  # 8x8 digits
    net = models.resnet18().train()
    net.layer2.eval()  # mixed flags must come back mixed
    learner = BYOL(net, image_size=16, hidden_layer="avgpool")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]

    namespace: dict = {"learner": learner}
    exec(compile(code, str(block.page), "exec"), namespace)  # noqa: S102 - our own docs

    after = net.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert value.dtype == after[key].dtype and torch.equal(value, after[key]), key
    assert after["bn1.num_batches_tracked"].item() == 0
    assert [m.training for m in net.modules()] == modes
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())
    assert namespace["bank_x"].shape == (len(namespace["bank"]), 512) and not namespace["bank_x"].requires_grad


@pytest.mark.parametrize("block", SHELL_RUN, ids=lambda block: block.name)
def test_shell_block_runs(block: Block, tmp_path: Path) -> None:
    """A declared shell block, as a user types it in a fresh folder (the package installed, examples/ at hand)."""
    import os
    import subprocess
    import sys

    (tmp_path / "examples").symlink_to(ROOT / "examples")
    _photos(tmp_path / "photos")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(["bash", "-e", "-c", _substituted(block)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{block.name}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    for net in re.findall(r"done: the improved network is in (\S+)", result.stdout):
        assert (tmp_path / net).is_file(), net


def test_the_readme_sequences_are_declared_to_run() -> None:
    readme = [block.source for block in SHELL_RUN if block.page.name == "README.md"]
    assert any("accelerate launch examples/train_accelerate.py" in source for source in readme)
    assert any("byol-pytorch train" in source for source in readme)


# --- links ------------------------------------------------------------------------------------------------------

def _prose(page: Path) -> str:
    """The page without its fenced code blocks (links there are code, not links)."""
    return re.sub(r"^\s*```.*?^\s*```\s*$", "", page.read_text(encoding="utf-8"), flags=re.DOTALL | re.MULTILINE)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of a page: lower case, punctuation dropped, spaces as '-'."""
    seen: Counter[str] = Counter()
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", _prose(page), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return found


def test_anchors_follow_github() -> None:
    assert "the-demos-defaults-steps-and-views" in anchors(ROOT / "benchmarks" / "README.md")
    assert "options-keywords-that-are-also-command-line-flags" in anchors(ROOT / "docs" / "trainer.md")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_name_files_that_exist(page: Path) -> None:
    links = re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", _prose(page))
    assert links or page.name == "cluster.md", page
    for link in links:
        if re.match(r"[a-z][a-z0-9+.-]*:", link, flags=re.IGNORECASE):  # https:, mailto:
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.relative_to(ROOT)}: {link} names no file"
        assert ROOT in target.parents or target == ROOT, f"{page.relative_to(ROOT)}: {link} leaves the repository"
        if anchor and target.suffix == ".md":
            assert anchor in anchors(target), f"{page.relative_to(ROOT)}: {link} names no heading there"


def _paragraphs(page: Path) -> list[str]:
    """The passages of a page, whitespace normalised: its paragraphs and tables, and its code blocks whole."""
    chunks = re.split(r"\n\s*\n", _prose(page)) + [block.source for block in page_blocks(page)]
    return [" ".join(chunk.split()) for chunk in chunks if chunk.strip() and not chunk.lstrip().startswith("#")]


def repeated_paragraphs(pages: list[Path], words: int = 40) -> list[str]:
    """Paragraphs of over ``words`` words found on two pages (or twice on one): link to them instead."""
    seen: dict[str, Path] = {}
    repeats = []
    for page in pages:
        for paragraph in _paragraphs(page):
            if len(paragraph.split()) <= words:
                continue
            if paragraph in seen:
                repeats.append(f"{page.relative_to(ROOT)} repeats {seen[paragraph].relative_to(ROOT)}: "
                               f"{paragraph[:80]}...")
            seen.setdefault(paragraph, page)
    return repeats


def test_no_page_repeats_another_pages_paragraph() -> None:
    assert repeated_paragraphs(PAGES) == []


def test_a_repeated_paragraph_is_found(tmp_path: Path) -> None:
    text = " ".join(f"word{i}" for i in range(41))
    (tmp_path / "a.md").write_text(f"# A\n\n{text}\n\nshort\n", encoding="utf-8")
    (tmp_path / "b.md").write_text(f"short\n\n{text.replace(' ', chr(10), 3)}\n", encoding="utf-8")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = repeated_paragraphs([tmp_path / "a.md", tmp_path / "b.md"])
    finally:
        ROOT = saved
    assert found == [f"b.md repeats a.md: {text[:80]}..."]
