"""examples/train_accelerate.py runs with python and under accelerate launch (2 CPU processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from torchvision import models

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_accelerate.py"
TINY = ["--steps", "2", "--batch-size", "8", "--image-size", "16"]


def _loads_into_resnet18(path: Path) -> None:
    net = models.resnet18()
    net.load_state_dict(torch.load(path, weights_only=True))


def test_with_python(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(EXAMPLE), *TINY, "--out", str(tmp_path / "run")], check=True, timeout=300)
    _loads_into_resnet18(tmp_path / "run" / "net.pt")


def test_with_accelerate_launch_on_two_processes(tmp_path: Path) -> None:
    env = {**os.environ, "ACCELERATE_USE_CPU": "true"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    result = subprocess.run([*launch, str(EXAMPLE), *TINY, "--out", str(tmp_path / "run")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("done: the improved network") == 1  # printed by the main process only
    _loads_into_resnet18(tmp_path / "run" / "net.pt")
