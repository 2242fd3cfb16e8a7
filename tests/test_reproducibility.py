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

from byol_pytorch.cli import main
from byol_pytorch.devices import resolve_mixed_precision

from .conftest import reset_accelerate_state

IMAGE_SIZES = (16, 32)


def arguments(out: Path, image_size: int) -> list[str]:
    return ["train", "--steps", "4", "--batch-size", "32", "--image-size", str(image_size), "--no-final-eval",
            "--seed", "0", "--no-progress", "--threads", "1", "--out", str(out)]


def train_in_a_new_process(out: Path, image_size: int) -> None:
    subprocess.run([sys.executable, "-m", "byol_pytorch", *arguments(out, image_size)], check=True,
                   capture_output=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def train_in_this_process(out: Path, image_size: int) -> None:
    threads = torch.get_num_threads()
    reset_accelerate_state()
    try:
        assert main(arguments(out, image_size)) == 0
    finally:
        reset_accelerate_state()
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of each image size: ``root/<size>/a`` in a fresh process, ``root/<size>/b`` in this one.

    A process that has already run other tests must give what a fresh one gives; the fresh ones run
    beside this process's own, one thread each.
    """
    root = tmp_path_factory.mktemp("repro")
    with ThreadPoolExecutor(max_workers=2) as pool:
        fresh = [pool.submit(train_in_a_new_process, root / str(size) / "a", size) for size in IMAGE_SIZES]
        for size in IMAGE_SIZES:
            train_in_this_process(root / str(size) / "b", size)
        for future in fresh:
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
