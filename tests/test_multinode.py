"""Two "machines" on localhost, one process each, sharing no filesystem: a run and its resume.

Each machine is its own ``accelerate launch --num_machines 2 --machine_rank R``
in its own working folder, so the run folder ``run`` of one is not the
other's: only the global main process may write it, and a resume must reach
machine 1 although it sees no checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from byol_pytorch.checkpoint import list_checkpoints

from .conftest import assert_same_state, free_port

SCRIPT = Path(__file__).parent / "scripts" / "multinode_cli.py"
# Both machines read one folder of 32 images (2 batches an epoch per process: 3 steps cross an epoch);
# MobileNetV3-small's checkpoints are a fifth of ResNet-18's.
TRAIN = ["train", "--image-size", "16", "--model", "mobilenet_v3_small",
         "--batch-size", "8", "--checkpoint-every", "1", "--no-final-eval", "--seed", "0",
         "--no-progress", "--knn-every", "0", "--mixed-precision", "no", "--num-workers", "0",
         "--projection-hidden-size", "32", "--threads", "1", "--log-every", "1", "--out", "run"]


def launch_two_machines(root: Path, *extra: str, stop_at: int = 0) -> list[subprocess.CompletedProcess]:
    """Runs the command line as machine 0 in ``root/m0`` and machine 1 in ``root/m1``; waits for both.

    Both read ``root/images``, 32 seeded random images written on the first launch under ``root``.
    """
    images = root / "images"
    if not images.exists():
        images.mkdir(parents=True)
        rng = np.random.default_rng(0)
        for i in range(32):
            Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(images / f"{i:02d}.png")
    port = free_port()
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    running = []
    for rank in (0, 1):
        folder = root / f"m{rank}"
        folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_machines", "2",
                   "--num_processes", "2", "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1",
                   "--main_process_port", str(port), "--mixed_precision", "no", "--dynamo_backend", "no",
                   str(SCRIPT), *TRAIN, "--data", str(images), *extra]
        running.append(subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env={**env, "BYOL_DUMP": str(root / "dump"),
                                                                  "BYOL_STOP_AT": str(stop_at)}))
    done = []
    try:
        for process in running:
            out, err = process.communicate(timeout=300)
            done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    finally:
        for process in running:
            if process.poll() is None:
                process.kill()
    return done


def test_two_machines_train_resume_and_end_identical(tmp_path: Path) -> None:
    interrupted = launch_two_machines(tmp_path, "--steps", "3", stop_at=2)
    for rank, result in enumerate(interrupted):
        assert result.returncode != 0, f"machine {rank} was not interrupted"
    assert "interrupted; continue with: byol-pytorch train --out run --resume" in interrupted[0].stderr
    machine0, machine1 = tmp_path / "m0" / "run", tmp_path / "m1" / "run"
    # Only the global main process writes the run folder.
    assert [p.name for p in list_checkpoints(machine0)] == ["checkpoint-00000001.pt", "checkpoint-00000002.pt"]
    assert {"net.pt", "net.safetensors", "run.json", "metrics.jsonl"} <= {p.name for p in machine0.iterdir()}
    assert not machine1.exists()

    resumed = launch_two_machines(tmp_path, "--steps", "3", "--resume")
    for rank, result in enumerate(resumed):
        assert result.returncode == 0, f"machine {rank}: {result.stderr[-3000:]}"
    assert "at step 2 (the main process's choice, sent to all 2)" in resumed[0].stdout + resumed[0].stderr
    ranks = [torch.load(tmp_path / "dump" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # Both machines continued from step 2 (machine 1 has no checkpoint of its own) and agree.
    assert [r["logged_steps"][0] for r in ranks] == [3, 3] and [r["step"] for r in ranks] == [3, 3]
    assert_same_state(ranks[0]["net"], ranks[1]["net"])
    assert list_checkpoints(machine0)[-1].name == "checkpoint-00000003.pt"
    assert not machine1.exists()
    assert_same_state(torch.load(machine0 / "net.pt", weights_only=True), ranks[0]["net"])
    # And the resumed run is the uninterrupted one: every process continued its own random stream.
    whole = launch_two_machines(tmp_path / "whole", "--steps", "3")
    assert all(result.returncode == 0 for result in whole), whole[0].stderr[-3000:] + whole[1].stderr[-3000:]
    assert_same_state(torch.load(tmp_path / "whole" / "dump" / "rank1.pt", weights_only=True)["net"], ranks[1]["net"])

    # Without --resume the main process's folder decides: both machines stop with its one-line error
    # (machine 1, which has no such folder, would otherwise start training and wait for machine 0 forever).
    refused = launch_two_machines(tmp_path, "--steps", "3")
    for rank, result in enumerate(refused):
        assert result.returncode != 0, f"machine {rank} trained into an existing run folder"
        assert "byol-pytorch: error: run folder run already exists; pass --resume" in result.stderr, result.stderr
    assert list_checkpoints(machine0)[-1].name == "checkpoint-00000003.pt" and not machine1.exists()
