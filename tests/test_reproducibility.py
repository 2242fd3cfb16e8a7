"""Seeded runs under the defaults (bf16 where the CPU has it) repeat bit for bit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from byol_pytorch.devices import resolve_mixed_precision


def train(out: Path, image_size: int) -> dict[str, torch.Tensor]:
    subprocess.run([sys.executable, "-m", "byol_pytorch", "train", "--steps", "4", "--batch-size", "32",
                    "--image-size", str(image_size), "--no-final-eval", "--seed", "0", "--no-progress",
                    "--out", str(out)], check=True, capture_output=True, timeout=300)
    return torch.load(out / "net.pt", weights_only=True)


@pytest.mark.parametrize("image_size", [16, 32])
def test_seeded_default_runs_are_finite_and_identical(tmp_path: Path, image_size: int) -> None:
    first, second = train(tmp_path / "a", image_size), train(tmp_path / "b", image_size)
    assert first.keys() == second.keys()
    assert [k for k in first if not torch.equal(first[k], second[k])] == []
    assert all(torch.isfinite(v).all() for v in first.values() if v.is_floating_point())
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["mixed_precision"] == resolve_mixed_precision("auto", "cpu")  # the default, bf16 here
