"""Time of one EMA update of a ResNet-50 target: fused ``ema_update_`` vs a Python loop.

The target is a deep copy of a torchvision ``resnet50()``. The variants run
in the same process, alternating so that any drift of the machine affects all,
and the median of ``--runs`` updates of each is reported.

A last variant is the floor no implementation can beat on the device: one
``lerp_`` over a single contiguous buffer as large as all the model's float
tensors (it reads two copies and writes one, as every EMA must). Its
bandwidth in GB/s is printed too; on a CPU the update is bound by memory.

Example::

    python benchmarks/bench_ema.py              # N=20 runs each
    python benchmarks/bench_ema.py --device cuda --runs 50
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision

from byol_pytorch.model.ema import ema_update_

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_step import python_loop_ema_  # noqa: E402  (the same loop as the step benchmark's baseline)


def time_once_ms(update: Callable[[], None], sync: Callable[[], None]) -> float:
    sync()
    start = time.perf_counter()
    update()
    sync()
    return (time.perf_counter() - start) * 1e3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50", help="torchvision model name (default resnet50)")
    parser.add_argument("--runs", type=int, default=20, help="timed updates of each variant (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed updates of each variant first")
    parser.add_argument("--tau", type=float, default=0.99)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own default)")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/ema_<model>_<device>.json)")
    return parser.parse_args(argv)


def build_variants(online: torch.nn.Module, tau: float) -> tuple[dict[str, Callable[[], None]], int]:
    """The update variants of a deep copy of ``online``, and the bytes an EMA of all its floats moves."""
    target = copy.deepcopy(online)
    floats = [t for t in [*online.parameters(), *online.buffers()] if t.is_floating_point()]
    flat_target = torch.cat([t.detach().flatten() for t in floats])
    flat_online = flat_target.clone()
    variants: dict[str, Callable[[], None]] = {
        "python_loop": lambda: python_loop_ema_(target, online, tau),
        "ema_update_": lambda: ema_update_(target, online, tau),
        "ema_update_copy_buffers": lambda: ema_update_(target, online, tau, buffers="copy"),
        "memory_floor": lambda: flat_target.lerp_(flat_online, 1.0 - tau),
    }
    return variants, 3 * flat_target.numel() * flat_target.element_size()  # read target and online, write target


def time_variants(variants: dict[str, Callable[[], None]], warmup: int, runs: int,
                  sync: Callable[[], None]) -> dict[str, list[float]]:
    """Milliseconds of each update, the variants alternating run by run."""
    for update in variants.values():
        for _ in range(warmup):
            update()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, update in variants.items():
            times[name].append(time_once_ms(update, sync))
    return times


def table(medians: dict[str, float], bytes_moved: int, heading: str) -> str:
    loop, fused, copy_buffers, floor = (medians[name] for name in
                                        ("python_loop", "ema_update_", "ema_update_copy_buffers", "memory_floor"))
    rows = [
        ("Python loop (`mul_().add_()` per parameter, buffers copied)", loop),
        ("`ema_update_` (fused `_foreach_lerp_`, buffers averaged: library default)", fused),
        ('`ema_update_(..., buffers="copy")` (same work as the loop)', copy_buffers),
        (f"memory floor: one `lerp_` over a flat buffer of all {bytes_moved / 12e6:.1f} M floats", floor),
    ]
    lines = [heading, "", "| variant | median ms | speed-up vs loop | effective GB/s |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {ms:.2f} | {loop / ms:.2f}x | {bytes_moved / ms / 1e6:.1f} |" for name, ms in rows]
    lines += ["", (f"Ratio loop / ema_update_: {loop / fused:.2f}; the floor allows at most {loop / floor:.2f}x "
                   f"over the loop, and ema_update_ takes {fused / floor:.2f}x the floor's time.")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    online = torchvision.models.get_model(args.model, weights=None).to(device)
    n_params = sum(p.numel() for p in online.parameters())
    n_tensors = len(list(online.parameters())) + len(list(online.buffers()))
    variants, bytes_moved = build_variants(online, args.tau)
    times = time_variants(variants, args.warmup, args.runs, sync)
    medians = {name: statistics.median(values) for name, values in times.items()}
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print(table(medians, bytes_moved, f"## EMA update of a {args.model} target ({n_params / 1e6:.1f} M parameters, "
                                      f"{n_tensors} tensors), {device}{threads}, median of {args.runs} runs"))

    suffix = f"_t{args.threads}" if args.threads else ""
    out = Path(args.out) if args.out else HERE / "results" / f"ema_{args.model}_{device.type}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    environment = {"torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
                   "device": str(device), "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                   "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                   "load_average_at_start": os.getloadavg()}
    loop = medians["python_loop"]
    payload = {"benchmark": "bench_ema", "arguments": vars(args), "environment": environment,
               "parameters": n_params, "tensors": n_tensors, "median_ms": medians, "times_ms": times,
               "ratio_loop_over_fused": loop / medians["ema_update_"],
               "ratio_loop_over_fused_copy_buffers": loop / medians["ema_update_copy_buffers"],
               "ratio_loop_over_memory_floor": loop / medians["memory_floor"], "bytes_moved_per_update": bytes_moved}
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nJSON written to {out}")


if __name__ == "__main__":
    main()
