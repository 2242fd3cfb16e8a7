"""Does the fast default cost quality? bf16 against fp32 on the built-in digits.

Runs ``byol-pytorch train`` (the built-in demo: ResNet-18, 16 px, 800 steps,
digit views) once per precision and seed, each in its own process, and
tabulates the held-out kNN top-1 and linear-probe top-1 of the trained
network (and of its random initialisation, which does not depend on the
precision), with the training time.

Examples::

    python benchmarks/bench_quality.py                         # bf16 and fp32, seeds 0 1 2
    python benchmarks/bench_quality.py --seeds 0 --steps 300   # a quicker look
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PRECISIONS = {"bf16": "bf16", "fp32": "no"}


def train(precision: str, seed: int, steps: int | None, folder: Path, extra: list[str]) -> dict[str, Any]:
    """One run of the command line; returns its summary.json."""
    out = folder / f"{precision}-seed{seed}"
    command = [sys.executable, "-m", "byol_pytorch", "train", "--out", str(out), "--seed", str(seed),
               "--mixed-precision", PRECISIONS[precision], "--no-progress", *extra]
    if steps is not None:
        command += ["--steps", str(steps)]
    print(f"[bench_quality] {' '.join(command[2:])}", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--precisions", nargs="+", choices=sorted(PRECISIONS), default=["bf16", "fp32"])
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the command's 800)")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/quality.json)")
    args, extra = parser.parse_known_args(argv)  # anything else goes to 'byol-pytorch train'

    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            for precision in args.precisions:  # alternate, so a change of machine load touches both
                summary = train(precision, seed, args.steps, Path(folder), extra)
                runs.append({"precision": precision, "seed": seed, **summary})

    print(f"## BYOL on the built-in digits: {runs[0]['steps']} steps, {runs[0]['model']} at "
          f"{runs[0]['image_size']} px, bf16 against fp32\n")
    print("| precision | seed | kNN top-1 | linear probe | kNN random init | probe random init | train time (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(f"| {run['precision']} | {run['seed']} | {run['knn_top1']['trained']:.4f} | "
              f"{run['linear_probe_top1']['trained']:.4f} | {run['knn_top1']['random_init']:.4f} | "
              f"{run['linear_probe_top1']['random_init']:.4f} | {run['train_time_s']:.1f} |")
    print("\n| precision | kNN top-1 (mean ± std over seeds) | linear probe | train time (s) |")
    print("|---|---:|---:|---:|")
    for precision in args.precisions:
        mine = [r for r in runs if r["precision"] == precision]
        print(f"| {precision} | {mean_std([r['knn_top1']['trained'] for r in mine])} | "
              f"{mean_std([r['linear_probe_top1']['trained'] for r in mine])} | "
              f"{statistics.mean(r['train_time_s'] for r in mine):.1f} |")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")

    out = Path(args.out) if args.out else HERE / "results" / "quality.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "bench_quality", "arguments": vars(args), "extra": extra,
                               "runs": runs}, indent=2) + "\n")
    print(f"JSON written to {out}")


if __name__ == "__main__":
    main()
