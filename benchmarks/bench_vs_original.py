"""The module loop of this library against the published byol-pytorch 0.9.1's, each with its defaults.

The loop is the one both READMEs give: ``loss = learner(images)``, the
backward, an Adam step and ``learner.update_moving_average()``, for a
torchvision ResNet-18 with ``hidden_layer='avgpool'`` on one seeded batch. Each
library runs in its own subprocess (both import as ``byol_pytorch``; the
original is put first on ``sys.path``), the two taking turns round by round,
so that a busy spell of a shared machine falls on both. Reported: the median
and minimum milliseconds per step over all rounds, and ours / original.

What the defaults do differs, and the comparison keeps it so: 0.9.1 draws one
set of colour parameters for the whole batch, with a 3x3 blur on both views,
and puts the two views through the network as one batch; ours draws the
paper's two views per image and keeps their batch-norm statistics apart.

The original needs ``einops`` and ``beartype`` (``pip install einops
beartype``) and its wheel, downloaded once::

    pip download byol-pytorch==0.9.1 --no-deps -d /tmp/byol-0.9.1
    python benchmarks/bench_vs_original.py --original /tmp/byol-0.9.1/byol_pytorch-0.9.1-py3-none-any.whl
    python benchmarks/bench_vs_original.py --original ... --rounds 5 --steps 10 --threads 1

The JSON goes to ``benchmarks/results/vs_original_<size>px_b<batch>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIBRARIES = ("ours", "original")


def steps_ms(args: argparse.Namespace) -> list[float]:
    """Milliseconds of each timed step of one library's loop (run inside its own subprocess)."""
    import torch
    import torchvision

    from byol_pytorch import BYOL

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = torchvision.models.resnet18()
    learner = BYOL(net, image_size=args.image_size, hidden_layer="avgpool")
    opt = torch.optim.Adam(learner.parameters(), lr=3e-4)
    images = torch.rand(args.batch_size, 3, args.image_size, args.image_size)
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        loss = learner(images)
        opt.zero_grad()
        loss.backward()
        opt.step()
        learner.update_moving_average()
        if step >= args.warmup:
            times.append((time.perf_counter() - start) * 1e3)
    assert torch.isfinite(loss), "the loss is not finite"
    return times


def run_library(library: str, args: argparse.Namespace, original: Path) -> list[float]:
    """One subprocess of ``library``'s loop; its step times."""
    command = [sys.executable, __file__, "--single", library, "--steps", str(args.steps), "--warmup",
               str(args.warmup), "--image-size", str(args.image_size), "--batch-size", str(args.batch_size),
               "--threads", str(args.threads or 0)]
    path = [str(original)] if library == "original" else [str(HERE.parent)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False,
                            cwd=tempfile.gettempdir())
    if result.returncode != 0:
        raise RuntimeError(f"{library} failed:\n{result.stderr[-3000:]}")
    found = json.loads(result.stdout.strip().splitlines()[-1])
    if not Path(found["module"]).resolve().is_relative_to(Path(path[0]).resolve()):
        raise RuntimeError(f"the {library} run imported {found['module']}, not the package under {path[0]}")
    return found["ms"]


def unpacked(wheel: Path) -> Path:
    """The wheel's files in a folder (a folder given is used as it is)."""
    if wheel.is_dir():
        return wheel
    folder = Path(tempfile.mkdtemp(prefix="byol-0.9.1-")) / "byol_pytorch-0.9.1"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", type=Path, help="byol-pytorch 0.9.1's wheel (or the folder it unpacks to)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--single", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.single:
        import byol_pytorch

        print(json.dumps({"module": byol_pytorch.__file__, "ms": steps_ms(args)}))
        return
    if args.original is None:
        parser.error("--original is required: the path of byol-pytorch 0.9.1's wheel (see the notes above)")
    original = unpacked(args.original)
    times: dict[str, list[float]] = {library: [] for library in LIBRARIES}
    for round_ in range(args.rounds):
        for library in LIBRARIES if round_ % 2 == 0 else reversed(LIBRARIES):
            times[library].extend(run_library(library, args, original))
    rows = {library: {"ms_median": statistics.median(ms), "ms_min": min(ms), "ms_all": ms}
            for library, ms in times.items()}
    speedup = rows["original"]["ms_median"] / rows["ours"]["ms_median"]
    import torch

    result = {"image_size": args.image_size, "batch_size": args.batch_size, "rounds": args.rounds,
              "steps": args.steps, "rows": rows, "ours_speedup_median": speedup,
              "ours_speedup_min": rows["original"]["ms_min"] / rows["ours"]["ms_min"],
              "environment": {"torch": torch.__version__, "python": platform.python_version(),
                              "cpu_count": os.cpu_count(), "threads": args.threads or torch.get_num_threads(),
                              "load_average": os.getloadavg()}}
    for library in LIBRARIES:
        print(f"{library:9s} ms/step median {rows[library]['ms_median']:7.1f}  min {rows[library]['ms_min']:7.1f}")
    print(f"ours is {speedup:.2f}x the original's speed (median), {result['ours_speedup_min']:.2f}x (min)")
    out = args.out or HERE / "results" / f"vs_original_{args.image_size}px_b{args.batch_size}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
