"""The colour part of BYOL's two views, three ways, side by side in one run.

- ``ours``: :class:`byol_pytorch.model.photometric.PhotometricAugmentation`, the
  default views' colour part (plain torch, per-image draws, no loop over images),
  in place in the batch it is given, as the default views run it on their crops;
- ``kornia``: the same pipeline from kornia's augmentation modules (what the default
  views used before: ``ColorJitter``, ``RandomGrayscale``, ``RandomGaussianBlur``,
  ``RandomSolarize``, per-image draws);
- ``torchvision_loop``: torchvision v2 transforms applied image by image.

Each pipeline gets the same seeded ``(B, 3, S, S)`` batch in [0, 1]; the pipelines
take turns within every repeat, so that a busy spell of a shared machine falls on
all of them. Reported per view and precision: median and minimum milliseconds per
view (wall clock) and the median CPU time of the process (less sensitive to other
processes on the machine), and each pipeline's speed-up over the loop.

Examples::

    python benchmarks/bench_photometric.py                      # 224 px, batch 64, 5 repeats
    python benchmarks/bench_photometric.py --threads 2 --repeats 3
    python benchmarks/bench_photometric.py --image-size 32 --batch-size 8 --repeats 2   # smoke run

The JSON goes to ``benchmarks/results/photometric_<size>px_b<batch>_t<threads>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import kornia.augmentation as K
import torch
import torchvision
import torchvision.transforms.v2 as T
from torch import nn

from byol_pytorch.model.augment import BYOLAugmentation, blur_kernel_size

HERE = Path(__file__).resolve().parent
PIPELINES = ("ours", "kornia", "torchvision_loop")
# fp32: float32 images, no autocast. bf16_autocast: float32 images under CPU/CUDA autocast in bfloat16
# (convolutions run in bf16). bf16_input: bfloat16 images (our pipeline only; kornia and torchvision
# expect float32 for their colour conversions).
PRECISIONS = ("fp32", "bf16_autocast", "bf16_input")


def view_probabilities(view: int) -> tuple[float, float]:
    """(blur p, solarize p) of the paper's view 1 or 2."""
    return (1.0, 0.0) if view == 1 else (0.1, 0.2)


def kornia_view(size: int, view: int) -> nn.Module:
    blur_p, solarize_p = view_probabilities(view)
    kernel = blur_kernel_size(size)
    ops: list[nn.Module] = [K.ColorJitter(0.4, 0.4, 0.2, 0.1, p=0.8), K.RandomGrayscale(p=0.2),
                            K.RandomGaussianBlur((kernel, kernel), sigma=(0.1, 2.0), p=blur_p)]
    if solarize_p:
        ops.append(K.RandomSolarize(thresholds=(0.5, 0.5), additions=0.0, p=solarize_p))
    return nn.Sequential(*ops)


def torchvision_loop_view(size: int, view: int) -> Callable[[torch.Tensor], torch.Tensor]:
    blur_p, solarize_p = view_probabilities(view)
    kernel = blur_kernel_size(size)
    pipeline = T.Compose([
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8), T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=blur_p), T.RandomSolarize(0.5, p=solarize_p),
    ])
    return lambda x: torch.stack([pipeline(image) for image in x])


def build(name: str, size: int, view: int) -> Callable[[torch.Tensor], torch.Tensor]:
    if name == "ours":
        # As the default views run it: in the crops' own tensor (timed() hands it a copy of the batch).
        return partial(BYOLAugmentation(size, view=view).colour, inplace=True)
    return kornia_view(size, view) if name == "kornia" else torchvision_loop_view(size, view)


def timed(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, precision: str) -> tuple[float, float]:
    """Wall and CPU milliseconds of one call (on a copy of ``x`` made before the clock starts)."""
    autocast = torch.autocast(x.device.type, dtype=torch.bfloat16) if precision == "bf16_autocast" else (
        contextlib.nullcontext())
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    x = x.clone()
    with torch.no_grad(), autocast:
        sync()
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn(x)
        sync()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert out.shape == x.shape and bool(torch.isfinite(out).all())
    return wall * 1e3, cpu * 1e3


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    images = torch.rand(args.batch_size, 3, args.image_size, args.image_size, device=device)
    cases = [(view, precision, name) for view in (1, 2) for precision in args.precisions for name in args.pipelines
             if precision != "bf16_input" or name == "ours"]
    functions = {(view, name): build(name, args.image_size, view) for view in (1, 2) for name in args.pipelines}
    inputs = {"fp32": images, "bf16_autocast": images, "bf16_input": images.bfloat16()}
    samples: dict[tuple, list[tuple[float, float]]] = {case: [] for case in cases}
    loads = [os.getloadavg()]
    for case in cases:  # warm-up: first calls build kernels and caches
        view, precision, name = case
        timed(functions[view, name], inputs[precision], precision)
    for _ in range(args.repeats):
        for case in cases:
            view, precision, name = case
            samples[case].append(timed(functions[view, name], inputs[precision], precision))
        loads.append(os.getloadavg())
    rows = []
    for (view, precision, name), values in samples.items():
        walls, cpus = [w for w, _ in values], [c for _, c in values]
        rows.append({"view": view, "precision": precision, "pipeline": name, "ms_median": statistics.median(walls),
                     "ms_min": min(walls), "cpu_ms_median": statistics.median(cpus), "ms_all": walls,
                     "cpu_ms_all": cpus})
    loop = {(r["view"], r["precision"]): r for r in rows if r["pipeline"] == "torchvision_loop"}
    for row in rows:
        reference = loop.get((row["view"], row["precision"] if row["precision"] != "bf16_input" else "fp32"))
        row["speedup_over_loop"] = reference["ms_median"] / row["ms_median"] if reference else None
    return {"image_size": args.image_size, "batch_size": args.batch_size, "repeats": args.repeats,
            "rows": rows, "load_average": loads, "environment": environment(args, device)}


def environment(args: argparse.Namespace, device: torch.device) -> dict:
    import kornia

    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "kornia": kornia.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "device": str(device),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}


def table(result: dict) -> str:
    lines = ["| view | precision | pipeline | ms/view median | min | CPU ms median | vs loop |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        speedup = f"{r['speedup_over_loop']:.1f}x" if r["speedup_over_loop"] else "-"
        lines.append(f"| {r['view']} | {r['precision']} | {r['pipeline']} | {r['ms_median']:.1f} | {r['ms_min']:.1f} "
                     f"| {r['cpu_ms_median']:.1f} | {speedup} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--pipelines", default=",".join(PIPELINES))
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.pipelines = [p for p in args.pipelines.split(",") if p]
    args.precisions = [p for p in args.precisions.split(",") if p]
    unknown = sorted(set(args.pipelines) - set(PIPELINES)) + sorted(set(args.precisions) - set(PRECISIONS))
    if unknown:
        parser.error(f"unknown pipelines or precisions {unknown}; expected {PIPELINES} and {PRECISIONS}")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(args)
    print(table(result))
    out = args.out or HERE / "results" / (f"photometric_{args.image_size}px_b{args.batch_size}"
                                          f"_t{torch.get_num_threads()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
