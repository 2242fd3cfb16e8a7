"""The scripts in examples/ run end to end as a user would run them.

Each script runs as ``python examples/SCRIPT`` would (forked from a process that
imported the package, ``tests/forked.py``) with tiny sizes (3 steps of 8
images at 16x16 px, scored on the first 64 digits of each split). A run must
exit cleanly, print finite losses, save a ``state_dict`` that a plain
torchvision ResNet-18 loads with ``weights_only=True`` and whose trunk (not its
unused classifier) differs from the untrained weights, and print the kNN
accuracies of the untrained and of the saved network, which are recomputed here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path

import pytest
import torch
import torchvision

from . import forked

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = ["train.py", "simsiam.py", "custom_augment.py"]
EVAL_DIGITS = 64
TINY = ["--steps", "3", "--batch-size", "8", "--image-size", "16", "--log-every", "1", "--device", "cpu",
        "--eval-digits", str(EVAL_DIGITS)]


def knn_top1(net: torch.nn.Module) -> float:
    """The examples' kNN top-1 (k=20, avgpool features of normalised digits), by the library's public pieces."""
    from torch.utils.data import Subset

    from byol_pytorch import DigitsDataset, FrozenEncoder
    from byol_pytorch.evaluate import extract_features, knn_accuracy
    from byol_pytorch.model import Normalize

    encoder = FrozenEncoder(net, "avgpool", normalize=Normalize())
    (bank_x, bank_y), (test_x, test_y) = (
        extract_features(encoder, Subset(DigitsDataset(16, split, return_labels=True), range(EVAL_DIGITS)))
        for split in ("train", "test"))
    return knn_accuracy(bank_x, bank_y, test_x, test_y, k=20)


@pytest.fixture(scope="module")
def example_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Every script run once, all at the same time: each takes one thread, so they share the cores."""
    # One intra-op thread unless the caller chose: the runs are tiny, and with
    # other processes on the cores, OpenMP's busy-waiting threads can make a
    # two-thread run several times slower than a one-thread one.
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    started = {}
    for script in SCRIPTS:
        folder = tmp_path_factory.mktemp(script[:-3])
        started[script] = (forked.start(EXAMPLES / script, [*TINY, "--out", str(folder / "net.pt")], env=env,
                                        cwd=folder), folder)
    try:
        return {script: (run.wait(timeout=300), folder / "net.pt") for script, (run, folder) in started.items()}
    finally:
        for run, _ in started.values():
            if run.poll() is None:
                run.kill()


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_and_saves_a_loadable_network(script: str, example_runs) -> None:
    result, out = example_runs[script]
    assert result.returncode == 0, f"{script} exited with {result.returncode}\n{result.stdout}\n{result.stderr}"
    stdout = result.stdout

    losses = [float(value) for value in re.findall(r"loss\s+(\S+)", stdout)]
    assert len(losses) == 3, stdout  # --log-every 1: one line per step
    # Two normalised squared errors of unit vectors: each in [0, 4]; three steps of training give three values.
    assert all(0 <= loss <= 8 for loss in losses) and len(set(losses)) == 3, losses

    assert out.is_file()
    state = torch.load(out, map_location="cpu", weights_only=True)
    net = torchvision.models.resnet18()
    net.load_state_dict(state)  # strict: exactly ResNet-18's keys and shapes

    # The examples seed the network with --seed (default 0) before building it.
    torch.manual_seed(0)
    untrained = torchvision.models.resnet18().state_dict()
    assert not torch.equal(state["conv1.weight"], untrained["conv1.weight"]), "training left the weights unchanged"
    # The classifier lies after the avgpool representation, so BYOL never trains it.
    assert torch.equal(state["fc.weight"], untrained["fc.weight"])

    torch.manual_seed(0)
    fresh = torchvision.models.resnet18()
    for label, network in (("freshly initialised", fresh), ("after training", net)):
        match = re.search(rf"{label}:\s*(\S+)", stdout)
        assert match is not None, f"no kNN accuracy for {label!r} in:\n{stdout}"
        assert float(match.group(1)) == round(knn_top1(network), 4), label


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_flags_are_documented(script: str, capsys: pytest.CaptureFixture[str]) -> None:
    # In-process (importing a script does not run it), so no second interpreter start-up.
    spec = importlib.util.spec_from_file_location(f"example_{script[:-3]}", EXAMPLES / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.__doc__ and "python examples/" in module.__doc__  # says how to run it
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    for flag in ("--steps", "--batch-size", "--image-size", "--out", "--model"):
        assert flag in usage, flag


@pytest.mark.usefixtures("fresh_accelerate_state")
def test_finetune_compares_the_pretrained_network_with_the_same_one_from_scratch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from byol_pytorch import DigitsDataset
    from byol_pytorch.cli import main as cli

    spec = importlib.util.spec_from_file_location("example_finetune", EXAMPLES / "finetune.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="run 'byol-pytorch train' first"):
        example.main([])
    threads = torch.get_num_threads()
    assert cli(["train", "--steps", "2", "--batch-size", "8", "--projection-hidden-size", "32", "--knn-every", "0",
                "--no-final-eval", "--no-progress", "--threads", "1", "--out", "runs/byol-tiny"]) == 0
    torch.set_num_threads(threads)
    picked = example.few_labels(DigitsDataset(16, split="train", return_labels=True), 2)
    assert sorted(int(picked[i][1]) for i in range(len(picked))) == sorted(list(range(10)) * 2)
    example.main(["--labels-per-class", "2", "--epochs", "1"])  # the newest runs/byol-*: the one just trained
    out = capsys.readouterr().out
    assert "runs/byol-tiny: fine-tuning on 20 labelled digits for 1 epochs, scored on 450 test digits" in out
    scores = dict(re.findall(r"(BYOL-pretrained|from scratch)\s+test accuracy (\S+)", out))
    assert set(scores) == {"BYOL-pretrained", "from scratch"}
    assert all(0.0 <= float(value) <= 1.0 for value in scores.values())
