"""This library's training step against the published byol-pytorch 0.9.1's, each with its defaults.

Two modes (``--mode``). ``module``: the loop both READMEs give,
``loss = learner(images)``, the backward, an Adam step and
``learner.update_moving_average()``, for a torchvision ResNet-18 with
``hidden_layer='avgpool'`` on one seeded batch. ``trainer``: each library's
``BYOLTrainer`` with its defaults (ours picks bf16 where the CPU computes it
natively, 0.9.1 runs Accelerate's default, fp32) on the same network, size
and batch, fed by one dataset of seeded random images with no loader
workers; a step is timed from one batch's first image read to the next's.
``--mixed-precision no`` runs ours in fp32, what a CPU without native bf16
gets. Each library runs in its own subprocess (both import as ``byol_pytorch``; the
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
    python benchmarks/bench_vs_original.py --original ... --mode trainer --mixed-precision no

``ONEDNN_MAX_CPU_ISA=AVX2`` in the environment keeps oneDNN's convolutions to
AVX2 kernels, the nearest this script gets to a CPU without AVX-512.

The JSON goes to ``benchmarks/results/vs_original_<mode>_<size>px_b<batch>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
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
from typing import Any

import torch
from torch.utils.data import Dataset

HERE = Path(__file__).resolve().parent
LIBRARIES = ("ours", "original")


def now() -> tuple[float, float]:
    """Wall-clock and this process's CPU seconds."""
    return time.perf_counter(), time.process_time()


def elapsed_ms(start: tuple[float, float], end: tuple[float, float]) -> tuple[float, float]:
    """Wall-clock and CPU milliseconds from ``start`` to ``end``: on a machine others share, the CPU time of a
    one-thread run is the steadier of the two."""
    return (end[0] - start[0]) * 1e3, (end[1] - start[1]) * 1e3


def steps_ms(args: argparse.Namespace) -> list[tuple[float, float]]:
    """Wall and CPU milliseconds of each timed step of one library's loop (run inside its own subprocess)."""
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
        start = now()
        loss = learner(images)
        opt.zero_grad()
        loss.backward()
        opt.step()
        learner.update_moving_average()
        if step >= args.warmup:
            times.append(elapsed_ms(start, now()))
    assert torch.isfinite(loss), "the loss is not finite"
    return times


class TimedImages(Dataset):
    """Seeded random images in [0, 1]; notes when each item is read (the loader runs in this process)."""

    def __init__(self, image_size: int, length: int) -> None:
        self.image_size, self.length = image_size, length
        self.read_at: list[tuple[float, float]] = []

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        self.read_at.append(now())
        generator = torch.Generator().manual_seed(index)
        return torch.rand(3, self.image_size, self.image_size, generator=generator)


def trainer_steps_ms(args: argparse.Namespace, library: str) -> list[tuple[float, float]]:
    """Wall and CPU milliseconds of each timed step of one library's ``BYOLTrainer`` with its defaults."""
    import torchvision

    from byol_pytorch import BYOLTrainer

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    steps = args.warmup + args.steps + 1  # the last step's end is the next batch's first read
    data = TimedImages(args.image_size, steps * args.batch_size)
    extra = {"mixed_precision": args.mixed_precision} if library == "ours" else {}
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
        trainer = BYOLTrainer(torchvision.models.resnet18(), dataset=data, image_size=args.image_size,
                              hidden_layer="avgpool", learning_rate=3e-4, num_train_steps=steps,
                              batch_size=args.batch_size, checkpoint_folder=folder, **extra)
        trainer()
    if len(data.read_at) < steps * args.batch_size:
        raise RuntimeError(f"{library}'s trainer read {len(data.read_at)} images in this process, expected "
                           f"{steps * args.batch_size}: step times need a loader without worker processes")
    starts = data.read_at[:steps * args.batch_size:args.batch_size]
    return [elapsed_ms(start, end) for start, end in zip(starts[args.warmup:], starts[args.warmup + 1:])]


def run_library(library: str, args: argparse.Namespace, original: Path) -> list[list[float]]:
    """One subprocess of ``library``'s loop; its step times."""
    command = [sys.executable, __file__, "--single", library, "--steps", str(args.steps), "--warmup",
               str(args.warmup), "--image-size", str(args.image_size), "--batch-size", str(args.batch_size),
               "--threads", str(args.threads or 0), "--mode", args.mode, "--mixed-precision", args.mixed_precision]
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


def summary(wall: list[float], cpu: list[float]) -> dict[str, Any]:
    """Median and minimum of the wall-clock and CPU milliseconds per step, and every step's."""
    return {"ms_median": statistics.median(wall), "ms_min": min(wall), "cpu_ms_median": statistics.median(cpu),
            "cpu_ms_min": min(cpu), "ms_all": wall, "cpu_ms_all": cpu}


def cpu_name() -> str:
    """The CPU's model name and the flags that decide its kernels (bf16, AMX, AVX-512, AVX2)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    lines = text.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    wanted = ("avx512_bf16", "amx_bf16", "avx512f", "avx2")
    return f"{model} ({', '.join(flag for flag in wanted if flag in flags)})"


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
    parser.add_argument("--mode", choices=("module", "trainer"), default="module")
    parser.add_argument("--mixed-precision", choices=("auto", "no"), default="auto",
                        help="ours' trainer precision (0.9.1's is fp32; the module loop has no autocast)")
    parser.add_argument("--single", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.single:
        import byol_pytorch

        ms = steps_ms(args) if args.mode == "module" else trainer_steps_ms(args, args.single)
        print(json.dumps({"module": byol_pytorch.__file__, "ms": ms}))
        return
    if args.original is None:
        parser.error("--original is required: the path of byol-pytorch 0.9.1's wheel (see the notes above)")
    original = unpacked(args.original)
    times: dict[str, list[list[float]]] = {library: [] for library in LIBRARIES}
    for round_ in range(args.rounds):
        for library in LIBRARIES if round_ % 2 == 0 else reversed(LIBRARIES):
            times[library].extend(run_library(library, args, original))
    rows = {library: summary([wall for wall, _ in pairs], [cpu for _, cpu in pairs])
            for library, pairs in times.items()}
    speedup = rows["original"]["ms_median"] / rows["ours"]["ms_median"]

    result = {"mode": args.mode, "mixed_precision": args.mixed_precision, "image_size": args.image_size, "batch_size": args.batch_size, "rounds": args.rounds,
              "steps": args.steps, "rows": rows, "ours_speedup_median": speedup,
              "ours_speedup_min": rows["original"]["ms_min"] / rows["ours"]["ms_min"],
              "ours_speedup_cpu_median": rows["original"]["cpu_ms_median"] / rows["ours"]["cpu_ms_median"],
              "environment": {"torch": torch.__version__, "python": platform.python_version(),
                              "cpu_count": os.cpu_count(), "threads": args.threads or torch.get_num_threads(),
                              "cpu": cpu_name(), "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
                              "load_average": os.getloadavg()}}
    for library in LIBRARIES:
        row = rows[library]
        print(f"{library:9s} ms/step median {row['ms_median']:7.1f}  min {row['ms_min']:7.1f}   "
              f"CPU ms/step median {row['cpu_ms_median']:7.1f}  min {row['cpu_ms_min']:7.1f}")
    print(f"ours is {speedup:.2f}x the original's speed (median), {result['ours_speedup_min']:.2f}x (min), "
          f"{result['ours_speedup_cpu_median']:.2f}x in CPU time (median)")
    out = args.out or HERE / "results" / f"vs_original_{args.mode}_{args.image_size}px_b{args.batch_size}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
