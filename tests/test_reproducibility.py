"""Seeded runs under the defaults (bf16 where the CPU has it) repeat bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from byol_pytorch.devices import resolve_mixed_precision

IMAGE_SIZES = (16, 32)


def train(out: Path, image_size: int) -> None:
    # One thread each: the four runs go two at a time, one per core.
    subprocess.run([sys.executable, "-m", "byol_pytorch", "train", "--steps", "4", "--batch-size", "32",
                    "--image-size", str(image_size), "--no-final-eval", "--seed", "0", "--no-progress",
                    "--out", str(out)], check=True, capture_output=True, timeout=300,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of each image size, in ``root/<size>/a`` and ``root/<size>/b``."""
    root = tmp_path_factory.mktemp("repro")
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = [pool.submit(train, root / str(size) / copy, size) for size in IMAGE_SIZES for copy in "ab"]
        for future in done:
            future.result()
    return root


@pytest.mark.parametrize("image_size", IMAGE_SIZES)
def test_seeded_default_runs_are_finite_and_identical(runs: Path, image_size: int) -> None:
    first, second = (torch.load(runs / str(image_size) / copy / "net.pt", weights_only=True) for copy in "ab")
    assert first.keys() == second.keys()
    assert [k for k in first if not torch.equal(first[k], second[k])] == []
    assert all(torch.isfinite(v).all() for v in first.values() if v.is_floating_point())
    summary = json.loads((runs / str(image_size) / "a" / "summary.json").read_text())
    assert summary["mixed_precision"] == resolve_mixed_precision("auto", "cpu")  # the default, bf16 here
    assert summary["steps"] == 4 and summary["cpu_threads"] == 1
