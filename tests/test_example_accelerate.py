"""examples/train_accelerate.py runs with python and under accelerate launch (2 CPU processes).

The launch also checks the trainer's data-parallel run: both processes end
with the same online and target weights, the model is wrapped in DDP without
the search for unused parameters (ResNet-18's classifier, after the
``avgpool`` representation, gets no gradient and must not need it), and the
logged loss is the mean over the processes.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchvision import models

from .conftest import assert_same_state, free_port

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_accelerate.py"
SCRIPT = Path(__file__).parent / "scripts" / "ddp_train.py"
TINY = ["--steps", "2", "--batch-size", "8", "--image-size", "16"]


def _loads_into_resnet18(path: Path) -> dict[str, torch.Tensor]:
    net = models.resnet18()
    net.load_state_dict(torch.load(path, weights_only=True))
    return net.state_dict()


@pytest.mark.usefixtures("fresh_accelerate_state")
def test_with_python(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # In this interpreter: the script's main is what `python examples/train_accelerate.py` runs.
    spec = importlib.util.spec_from_file_location("train_accelerate", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main([*TINY, "--out", str(tmp_path / "run")])
    assert f"done: the improved network is in {tmp_path / 'run'}/net.pt" in capsys.readouterr().out
    torch.manual_seed(0)
    untrained = models.resnet18().state_dict()
    trained = _loads_into_resnet18(tmp_path / "run" / "net.pt")
    assert not torch.equal(trained["conv1.weight"], untrained["conv1.weight"])


@pytest.mark.usefixtures("fresh_accelerate_state")
def test_a_second_launch_into_the_same_folder_continues_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from accelerate.state import AcceleratorState

    spec = importlib.util.spec_from_file_location("train_accelerate", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    example.main(TINY)  # 2 steps into the default folder of one process
    run = tmp_path / "runs" / "train_accelerate-1proc"
    AcceleratorState._reset_state(reset_partial_state=True)
    with pytest.warns(UserWarning, match="resuming step 2 with num_train_steps 3 instead of 2"):
        example.main([*TINY[:1], "3", *TINY[2:]])  # the README's second command, here with one more step
    output = capsys.readouterr().out
    assert "resumed from runs/train_accelerate-1proc/checkpoint-00000002.pt at step 2" in output
    assert output.count("done: the improved network is in runs/train_accelerate-1proc/net.pt") == 2
    assert sorted(p.name for p in run.glob("checkpoint-*.pt"))[-1] == "checkpoint-00000003.pt"


def test_with_accelerate_launch_on_two_processes(tmp_path: Path) -> None:
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}  # a core per process
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port())]
    result = subprocess.run([*launch, str(SCRIPT), str(tmp_path), *TINY, "--out", str(tmp_path / "run")],
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("done: the improved network") == 1  # printed by the main process only
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["num_processes"] == 2 and rank0["ddp"] == "DistributedDataParallel"
    assert rank0["find_unused_parameters"] is False
    assert_same_state(rank0["online"], rank1["online"])
    assert_same_state(rank0["target"], rank1["target"])
    assert rank0["loss"] == rank1["loss"]  # the logged loss is the mean over processes
    # Every process ends with the same network, the classifier outside the learner included.
    assert_same_state(rank0["net"], rank1["net"])
    assert_same_state(_loads_into_resnet18(tmp_path / "run" / "net.pt"), rank0["net"])
