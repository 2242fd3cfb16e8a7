"""How long the step waits for data at an epoch boundary: a folder of a few batches, two loader workers.

A loader that ends with its epoch lets its workers drain and start again, so
the first batch of each epoch is waited for; a loader that spans epochs keeps
them reading ahead. Trains ResNet-18 on a folder of JPEGs (scikit-image's
photographs, nothing downloaded) with ``log_every=1`` and reports the loop's
``data_wait_s`` of every step, the steps that start an epoch apart.
``--code DIR`` runs another checkout's package, side by side.

    python benchmarks/bench_epoch_boundary.py
    python benchmarks/bench_epoch_boundary.py --code /path/to/main

Writes ``benchmarks/results/epoch_boundary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
IMAGES, BATCH = 32, 8  # 4 batches an epoch


def worker(folder: Path, out: Path, steps: int) -> None:
    import torch
    from torchvision.models import resnet18

    from byol_pytorch import BYOLTrainer, ImageFolderDataset

    torch.manual_seed(0)
    torch.set_num_threads(1)
    trainer = BYOLTrainer(resnet18(), dataset=ImageFolderDataset(folder, 96), image_size=96, hidden_layer="avgpool",
                          num_train_steps=steps, batch_size=BATCH, checkpoint_every=10_000, output_dir=str(out),
                          num_workers=2, mixed_precision="no", progress=False, log_every=1)
    trainer()
    waits = [r["data_wait_s"] for r in trainer.history if "data_wait_s" in r]
    (out / "waits.json").write_text(json.dumps(waits))


def build_folder(folder: Path) -> None:
    sys.path.insert(0, str(HERE.parent))
    from bench_data import build_folder as build

    build(folder, IMAGES)


def measure(code: Path, folder: Path, steps: int) -> list[float]:
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "run"
        env = {**os.environ, "PYTHONPATH": f"{code}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        subprocess.run([sys.executable, str(HERE), "--worker", str(folder), str(out), str(steps)], env=env,
                       check=True, capture_output=True, text=True)
        return json.loads((out / "waits.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, action="append", help="checkouts to compare (default: this one)")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker[0]), Path(args.worker[1]), int(args.worker[2]))
        return
    per_epoch = IMAGES // BATCH
    results = {}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "photos"
        build_folder(folder)
        for code in args.code or [ROOT]:
            waits = measure(code, folder, args.steps)
            first = [w for step, w in enumerate(waits) if step % per_epoch == 0 and step > 0]
            rest = [w for step, w in enumerate(waits) if step % per_epoch != 0]
            results[str(code)] = {"wait_s_per_step": waits, "epoch_start_median_s": statistics.median(first),
                                  "other_steps_median_s": statistics.median(rest)}
            print(f"{code}: first step of epochs 2+: median wait {statistics.median(first) * 1000:.0f} ms; "
                  f"other steps {statistics.median(rest) * 1000:.0f} ms; per step (ms): "
                  + " ".join(f"{w * 1000:.0f}" for w in waits), flush=True)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "epoch_boundary.json").write_text(json.dumps(
        {"setting": {"images": IMAGES, "batch_size": BATCH, "workers": 2, "model": "resnet18", "image_size": 96},
         "results": results}, indent=2))


if __name__ == "__main__":
    main()
