"""Every Python block of the README runs (on ResNet-18 and small sizes instead of ResNet-50 at 256 px)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
SMALLER = [
    ("models.resnet50()", "models.resnet18()"),
    ("256", "32"),
    ("(64, 64)", "(32, 32)"),
    ("image_size=64", "image_size=32"),
    ("range(100)", "range(2)"),
    ("num_train_steps=100_000", "num_train_steps=2"),
    ("MockDataset(32, 10000)", "MockDataset(32, 64)"),
    ("DigitsDataset(64, split=", "DigitsDataset(32, split="),
    ("num_train_steps=1000", "num_train_steps=2"),
]


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_the_usage_blocks() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 5
    assert "learner.update_moving_average()" in blocks[0] and "BYOLTrainer(" in "".join(blocks)


def _photos(folder: Path, count: int = 8) -> None:
    from PIL import Image

    folder.mkdir()
    for i in range(count):
        Image.new("RGB", (48 + i, 36), (30 * i, 100, 200)).save(folder / f"{i}.jpg")


def test_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate.state import AcceleratorState

    monkeypatch.chdir(tmp_path)
    _photos(tmp_path / "photos")  # the folder the photo-folder block reads
    namespace: dict = {}
    for block in python_blocks():
        for old, new in SMALLER:
            block = block.replace(old, new)
        # Each block is a script of its own: a new process, so a new Accelerator state.
        AcceleratorState._reset_state(reset_partial_state=True)
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
    AcceleratorState._reset_state(reset_partial_state=True)
    # The loop saved the user's improved network and the trainer its checkpoints.
    assert set(torch.load(tmp_path / "improved-net.pt", weights_only=True)) == set(namespace["net"].state_dict())
    assert (tmp_path / "checkpoints" / "net.pt").exists()
    assert (tmp_path / "byol-run" / "net.pt").exists()  # byol-pytorch 0.9's checkpoint_folder
    assert namespace["embedding"].shape == (20, 512)


def test_the_two_commands_are_the_first_command_and_what_ci_runs() -> None:
    commands = re.findall(r"```bash\n(.*?)\n```", README.read_text(encoding="utf-8"), flags=re.S)
    assert commands[:2] == ["pip install . && byol-pytorch train", "pip install -e '.[test]' && pytest"]
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == commands[1]


def test_readme_evaluation_leaves_the_network_as_it_was() -> None:
    """The evaluation block on a ResNet-18 in training mode (one stage frozen): every tensor bit-identical."""
    from torchvision import models

    from byol_pytorch import BYOL

    block = next(b for b in python_blocks() if "extract_features(" in b)
    block = block.replace("DigitsDataset(64", "DigitsDataset(16")  # 8x8 digits; 16 px keeps it quick
    net = models.resnet18().train()
    net.layer2.eval()  # mixed flags must come back mixed
    learner = BYOL(net, image_size=16, hidden_layer="avgpool")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]

    namespace: dict = {"learner": learner}
    exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README

    after = net.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert value.dtype == after[key].dtype and torch.equal(value, after[key]), key
    assert after["bn1.num_batches_tracked"].item() == 0
    assert [m.training for m in net.modules()] == modes
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())
    assert namespace["bank_x"].shape == (len(namespace["bank"]), 512) and not namespace["bank_x"].requires_grad
