"""Two CPU processes (gloo) train on tar shards from the command line: no sample is read twice in a pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import free_port
from .photo_sources import sample_key, write_shards

SCRIPT = Path(__file__).parent / "scripts" / "stream_keys.py"
SHARDS, PER_SHARD = 8, 6  # 4 slots (2 processes x 2 workers) of 2 shards: 12 samples each per pass


def test_two_processes_split_the_shards(tmp_path: Path) -> None:
    pattern = write_shards(tmp_path / "shards", SHARDS, PER_SHARD)
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "BYOL_DUMP": str(tmp_path / "dump"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--main_process_port", str(free_port()), "--mixed_precision", "no",
              "--dynamo_backend", "no"]
    # 3 steps of 4 per process: 12 images, 2 batches from one worker and 1 from the other, all in pass 0.
    train = ["train", "--data", pattern, "--steps", "3", "--batch-size", "4", "--image-size", "16",
             "--model", "mobilenet_v3_small", "--num-workers", "2", "--shuffle-buffer", "3", "--no-final-eval",
             "--knn-every", "0", "--checkpoint-every", "3", "--projection-hidden-size", "32", "--threads", "1",
             "--mixed-precision", "no", "--no-progress", "--out", str(tmp_path / "run")]
    result = subprocess.run([*launch, str(SCRIPT), *train], env=env, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    keys = [json.loads((tmp_path / "dump" / f"keys-rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [len(k) for k in keys] == [12, 12] and {p for k in keys for _, p in k} == {0}
    seen = [key for k in keys for key, _ in k]
    assert len(set(seen)) == 24, "a sample was read twice in one pass"
    everything = {sample_key(tmp_path / "shards", i, PER_SHARD) for i in range(SHARDS * PER_SHARD)}
    assert set(seen) <= everything and not {k for k, _ in keys[0]} & {k for k, _ in keys[1]}
    assert "on a stream of images" in result.stdout
