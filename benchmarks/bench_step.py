"""Benchmark of one BYOL training step under several speed settings.

A step is: two augmented views of a batch, the online forward and backward,
the target forward, an Adam step on the trainable parameters and the EMA update
of the target. Every configuration runs in a fresh subprocess of this script
(``--single NAME``) so that the peak memory reported for it is its own, and all
of them see the same seeded input batch.

Examples::

    python benchmarks/bench_step.py                       # resnet18, 64 px, batch 64
    python benchmarks/bench_step.py --quick               # smoke run, a few seconds a config
    python benchmarks/bench_step.py --configs baseline,default --sweep
    python benchmarks/bench_step.py --compile             # add torch.compile (slow to compile on CPU)

The results are printed as markdown tables and written as JSON to
``benchmarks/results/<name>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torchvision
from torch import nn

from byol_pytorch import BYOL
from byol_pytorch.model.loss import byol_loss

HERE = Path(__file__).resolve().parent
RESULT_MARKER = "BENCH_RESULT_JSON "
ALL_CONFIGS = ("baseline", "foreach_ema", "bf16", "bf16_channels_last", "default", "concat", "compile")
BREAKDOWN_CONFIGS = ("baseline", "default")
SWEEP_CONFIGS = ("baseline", "default")
SWEEP_BATCH_SIZES = (16, 32, 64)
SWEEP_IMAGE_SIZES = (32, 64, 96)
QUICK_SWEEP_BATCH_SIZES = (4, 8)
QUICK_SWEEP_IMAGE_SIZES = (32, 48)
PIECES = ("augment", "online_forward", "online_backward", "target_forward", "optimizer_step", "ema_update")


# -- configurations -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """How a training step is run.

    Attributes:
        bf16: run the forward passes under ``torch.autocast`` in bfloat16.
        channels_last: network weights and views in channels-last memory format.
        fused_ema: the library's ``update_moving_average`` (one ``_foreach_lerp_``)
            instead of a Python loop over parameters.
        concat_views: both views through the networks in one batch.
        compile: ``torch.compile`` the BYOL module.
    """

    bf16: bool = False
    channels_last: bool = False
    fused_ema: bool = False
    concat_views: bool = False
    compile: bool = False


def bf16_supported(device: torch.device) -> bool:
    """Whether bfloat16 autocast is worth using on ``device`` (native bf16 math)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        if check is not None:
            return bool(check())
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def default_step_options(device: torch.device) -> StepOptions:
    """The settings the library's trainer uses by default on ``device``.

    bfloat16 autocast where the hardware computes in bf16 (a CPU with
    AVX512-BF16, a CUDA GPU with bf16), channels-last memory format, the fused
    EMA and one forward pass per view (as in the paper).
    """
    return StepOptions(bf16=bf16_supported(device), channels_last=True, fused_ema=True, concat_views=False)


def config_options(name: str, device: torch.device) -> StepOptions:
    """The :class:`StepOptions` of the configuration called ``name``."""
    default = default_step_options(device)
    table = {
        "baseline": StepOptions(),
        "foreach_ema": StepOptions(fused_ema=True),
        "bf16": StepOptions(bf16=True, fused_ema=True),
        "bf16_channels_last": StepOptions(bf16=True, channels_last=True, fused_ema=True),
        "default": default,
        "concat": dataclasses.replace(default, concat_views=True),
        "compile": dataclasses.replace(default, compile=True),
    }
    if name not in table:
        raise ValueError(f"unknown configuration {name!r}; known: {', '.join(ALL_CONFIGS)}")
    return table[name]


@torch.no_grad()
def python_loop_ema_(target: nn.Module, online: nn.Module, tau: float) -> None:
    """The naive EMA: one pair of in-place ops per parameter, buffers copied."""
    for target_param, online_param in zip(target.parameters(), online.parameters()):
        target_param.mul_(tau).add_(online_param, alpha=1.0 - tau)
    for target_buffer, online_buffer in zip(target.buffers(), online.buffers()):
        target_buffer.copy_(online_buffer)


# -- helpers ----------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(seed)


def synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def rss_peak_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def rss_now_mib() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / (1024 * 1024)


class Learner:
    """A BYOL module, its optimiser and the EMA update of one configuration."""

    def __init__(self, args: argparse.Namespace, options: StepOptions, device: torch.device) -> None:
        self.options = options
        self.device = device
        seed_everything(args.seed)
        net = torchvision.models.get_model(args.model, weights=None).to(device)
        if options.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.byol = BYOL(
            net,
            image_size=args.image_size,
            concat_views=options.concat_views,
            channels_last=options.channels_last,
        ).to(device)
        self.byol.train()
        self.params = [p for p in self.byol.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=3e-4)
        self.forward = torch.compile(self.byol) if options.compile else self.byol
        generator = torch.Generator().manual_seed(args.seed)
        self.images = torch.rand(args.batch_size, 3, args.image_size, args.image_size, generator=generator).to(device)

    def update_target(self) -> None:
        if self.options.fused_ema:
            self.byol.update_moving_average()
        else:
            tau = self.byol.current_tau
            python_loop_ema_(self.byol.target_encoder, self.byol.online_encoder, tau)
            python_loop_ema_(self.byol.target_projector, self.byol.online_projector, tau)

    def step(self) -> torch.Tensor:
        """One full training step, as a training loop would run it."""
        with autocast(self.device, self.options.bf16):
            loss = self.forward(self.images)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.update_target()
        return loss.detach()

    def timed_pieces_step(self, timer: PieceTimer) -> torch.Tensor:
        """The same step rebuilt from the learner's parts, with each part timed.

        The target runs before the online network here so that the online
        forward and backward can be timed back to back; the target has no
        gradient and does not depend on the online pass, so the work is the same.
        """
        byol, options, x = self.byol, self.options, self.images

        def prepare(view: torch.Tensor) -> torch.Tensor:
            if byol.normalize is not None:
                view = byol.normalize(view)
            if options.channels_last:
                view = view.contiguous(memory_format=torch.channels_last)
            return view

        with timer("augment"), torch.autocast(device_type=self.device.type, enabled=False):
            view_1, view_2 = prepare(byol.augment1(x)), prepare(byol.augment2(x))

        with timer("target_forward"), torch.no_grad(), autocast(self.device, options.bf16):
            if options.concat_views:
                target_1, target_2 = byol.target_projector(byol.target_encoder(torch.cat([view_1, view_2]))).chunk(2)
            else:
                target_1 = byol.target_projector(byol.target_encoder(view_1))
                target_2 = byol.target_projector(byol.target_encoder(view_2))

        def online(view: torch.Tensor) -> torch.Tensor:
            return byol.online_predictor(byol.online_projector(byol.online_encoder(view)))

        with timer("online_forward"), autocast(self.device, options.bf16):
            if options.concat_views:
                pred_1, pred_2 = online(torch.cat([view_1, view_2])).chunk(2)
            else:
                pred_1, pred_2 = online(view_1), online(view_2)
            loss = byol_loss(pred_1, pred_2, target_1, target_2)

        with timer("online_backward"):
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()

        with timer("optimizer_step"):
            self.optimizer.step()

        with timer("ema_update"):
            self.update_target()
        return loss.detach()


class PieceTimer:
    """Wall-clock time of named pieces of a step, synchronised on CUDA."""

    def __init__(self, sync: Callable[[], None]) -> None:
        self.sync = sync
        self.times: dict[str, list[float]] = {piece: [] for piece in PIECES}
        self.recording = True

    @contextlib.contextmanager
    def __call__(self, piece: str) -> Iterator[None]:
        self.sync()
        start = time.perf_counter()
        yield
        self.sync()
        if self.recording:
            self.times[piece].append(time.perf_counter() - start)


def time_steps(step: Callable[[], torch.Tensor], warmup: int, steps: int, sync: Callable[[], None]) -> list[float]:
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return times


# -- one configuration (runs in its own process) -------------------------------------


def run_single(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    sync = synchronizer(device)
    options = config_options(args.single, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = rss_now_mib()
    load_at_start = os.getloadavg()

    learner = Learner(args, options, device)
    times = time_steps(learner.step, args.warmup, args.steps, sync)
    loss = learner.step().item()  # untimed: checks that the loss is finite
    mean, median = statistics.fmean(times), statistics.median(times)
    result: dict = {
        "config": args.single,
        "options": dataclasses.asdict(options),
        "model": args.model,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "torch_threads": torch.get_num_threads(),
        "step_ms_mean": mean * 1e3,
        "step_ms_median": median * 1e3,
        "step_ms_std": (statistics.stdev(times) if len(times) > 1 else 0.0) * 1e3,
        "step_ms_min": min(times) * 1e3,
        "step_ms_all": [t * 1e3 for t in times],
        # The median: robust to the odd step slowed by other work on a shared machine.
        "images_per_s": args.batch_size / median,
        "final_loss": loss,
        "peak_rss_mib": rss_peak_mib(),
        "rss_before_model_mib": rss_before,
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
    }
    if device.type == "cuda":
        result["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20

    if args.breakdown:
        timer = PieceTimer(sync)
        timer.recording = False
        for _ in range(args.warmup):
            learner.timed_pieces_step(timer)
        timer.recording = True
        for _ in range(args.steps):
            learner.timed_pieces_step(timer)
        pieces = {piece: statistics.median(values) * 1e3 for piece, values in timer.times.items()}
        pieces["online_forward_backward"] = pieces["online_forward"] + pieces["online_backward"]
        pieces["sum"] = sum(pieces[piece] for piece in PIECES)
        result["breakdown_ms"] = pieces
    return result


# -- the driver ------------------------------------------------------------------------


def child_command(args: argparse.Namespace, config: str, batch_size: int, image_size: int, breakdown: bool) -> list[str]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--single", config,
        "--model", args.model,
        "--image-size", str(image_size),
        "--batch-size", str(batch_size),
        "--steps", str(args.steps),
        "--warmup", str(args.warmup),
        "--device", args.device,
        "--seed", str(args.seed),
    ]  # fmt: skip
    if args.threads:
        command += ["--threads", str(args.threads)]
    if breakdown:
        command.append("--breakdown")
    return command


def run_child(command: list[str]) -> dict:
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    return {"error": f"exit status {completed.returncode}; see the messages above", "command": command}


def environment(args: argparse.Namespace, device: torch.device) -> dict:
    info = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": args.threads or torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_supported": bf16_supported(device),
        "default_step_options": dataclasses.asdict(default_step_options(device)),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, check=False
        ).stdout.strip()
        if commit:
            info["git_commit"] = commit
    return info


def flags(options: dict) -> str:
    parts = [
        "bf16" if options["bf16"] else "fp32",
        "channels_last" if options["channels_last"] else "contiguous",
        "fused EMA" if options["fused_ema"] else "loop EMA",
        "concat views" if options["concat_views"] else "view by view",
    ]
    if options["compile"]:
        parts.append("compiled")
    return ", ".join(parts)


def memory_cell(result: dict) -> str:
    if "cuda_max_memory_allocated_mib" in result:
        return f"{result['cuda_max_memory_allocated_mib']:.0f}"
    return f"{result['peak_rss_mib']:.0f}"


def results_table(results: list[dict], device: torch.device) -> str:
    base = next((r for r in results if r.get("config") == "baseline" and "error" not in r), None)
    memory = "CUDA max allocated (MiB)" if device.type == "cuda" else "peak RSS (MiB)"
    lines = [
        f"| config | settings | ms/step median | ms/step min | images/s | speed-up vs baseline (median) "
        f"| speed-up (min) | {memory} |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r.get('config', '?')} | failed: {r['error']} | | | | | | |")
            continue
        speedup = f"{base['step_ms_median'] / r['step_ms_median']:.2f}x" if base else "n/a"
        speedup_min = f"{base['step_ms_min'] / r['step_ms_min']:.2f}x" if base else "n/a"
        lines.append(
            f"| {r['config']} | {flags(r['options'])} | {r['step_ms_median']:.0f} | {r['step_ms_min']:.0f} "
            f"| {r['images_per_s']:.1f} | {speedup} | {speedup_min} | {memory_cell(r)} |"
        )
    return "\n".join(lines)


def breakdown_table(results: list[dict]) -> str:
    rows = [r for r in results if "breakdown_ms" in r]
    if not rows:
        return ""
    columns = (
        ("augment", "augment (2 views)"),
        ("online_forward", "online fwd"),
        ("online_backward", "online bwd"),
        ("online_forward_backward", "online fwd+bwd"),
        ("target_forward", "target fwd"),
        ("optimizer_step", "Adam step"),
        ("ema_update", "EMA"),
        ("sum", "sum of pieces"),
    )
    lines = [
        "| config | " + " | ".join(title for _, title in columns) + " | full step |",
        "|---|" + "---:|" * (len(columns) + 1),
    ]
    for r in rows:
        cells = [f"{r['breakdown_ms'][key]:.1f}" for key, _ in columns]
        lines.append(f"| {r['config']} | " + " | ".join(cells) + f" | {r['step_ms_median']:.1f} |")
    share = ["", "Share of the sum of pieces:", ""]
    for r in rows:
        total = r["breakdown_ms"]["sum"]
        parts = ", ".join(
            f"{title} {100 * r['breakdown_ms'][key] / total:.0f}%"
            for key, title in columns
            if key in ("augment", "online_forward_backward", "target_forward", "optimizer_step", "ema_update")
        )
        share.append(f"- {r['config']}: {parts}")
    return "\n".join(lines + share)


def sweep_tables(sweep: dict) -> str:
    out = []
    for axis, title in (("batch_size", "batch size"), ("image_size", "image size")):
        points = sweep[axis]
        values = sorted({p[axis] for p in points if "error" not in p})
        configs = [c for c in SWEEP_CONFIGS if any(p.get("config") == c for p in points)]
        header = f"| {title} | " + " | ".join(f"{c} ms/step | {c} images/s" for c in configs) + " | speed-up |"
        lines = [header, "|---:|" + "---:|" * (2 * len(configs) + 1)]
        for value in values:
            cells, by_config = [], {}
            for config in configs:
                point = next(
                    (p for p in points if p.get("config") == config and p[axis] == value and "error" not in p), None
                )
                by_config[config] = point
                cells += [f"{point['step_ms_median']:.0f}", f"{point['images_per_s']:.1f}"] if point else ["", ""]
            base, default = by_config.get("baseline"), by_config.get("default")
            speedup = f"{base['step_ms_median'] / default['step_ms_median']:.2f}x" if base and default else ""
            lines.append(f"| {value} | " + " | ".join(cells) + f" | {speedup} |")
        fixed = "image size" if axis == "batch_size" else "batch size"
        fixed_value = points[0]["image_size" if axis == "batch_size" else "batch_size"] if points else "?"
        out.append(f"Step time vs {title} ({fixed} {fixed_value}):\n\n" + "\n".join(lines))
    return "\n\n".join(out)


def merge_runs(runs: list[dict]) -> dict:
    """One result from the repeats of a config: statistics over all their timed steps."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return runs[0]
    if len(good) == 1:
        return {**good[0], "repeats": 1}
    merged = dict(good[0])
    times = [t for r in good for t in r["step_ms_all"]]
    merged.update(
        repeats=len(good),
        step_ms_all=times,
        step_ms_mean=statistics.fmean(times),
        step_ms_median=statistics.median(times),
        step_ms_std=statistics.stdev(times),
        step_ms_min=min(times),
        images_per_s=good[0]["batch_size"] / (statistics.median(times) / 1e3),
        peak_rss_mib=max(r["peak_rss_mib"] for r in good),
        load_average_at_start=min(r["load_average_at_start"] for r in good),
        runs=good,
    )
    if "cuda_max_memory_allocated_mib" in good[0]:
        merged["cuda_max_memory_allocated_mib"] = max(r["cuda_max_memory_allocated_mib"] for r in good)
    if "breakdown_ms" in good[0]:
        # Each run's breakdown is a median per piece; keep the least disturbed run's value.
        pieces = {piece: min(r["breakdown_ms"][piece] for r in good) for piece in PIECES}
        pieces["online_forward_backward"] = pieces["online_forward"] + pieces["online_backward"]
        pieces["sum"] = sum(pieces[piece] for piece in PIECES)
        merged["breakdown_ms"] = pieces
    return merged


def run_all(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    if args.configs == "all":
        configs = [c for c in ALL_CONFIGS if c != "compile" or args.compile or device.type == "cuda"]
    else:
        configs = [c.strip() for c in args.configs.split(",") if c.strip()]
        for config in configs:
            config_options(config, device)  # fails early on an unknown name

    started = time.perf_counter()
    # Rounds over all configs (rather than repeats of one config in a row), so
    # that a busy spell of a shared machine is spread over the configs.
    runs: dict[str, list[dict]] = {config: [] for config in configs}
    for round_ in range(args.repeats):
        for config in configs:
            label = f" (round {round_ + 1}/{args.repeats})" if args.repeats > 1 else ""
            print(f"[bench_step] {config}{label} ...", file=sys.stderr, flush=True)
            breakdown = config in BREAKDOWN_CONFIGS
            result = run_child(child_command(args, config, args.batch_size, args.image_size, breakdown))
            result.setdefault("config", config)
            runs[config].append(result)
    results = [merge_runs(runs[config]) for config in configs]

    sweep = None
    if args.sweep:
        batch_sizes = QUICK_SWEEP_BATCH_SIZES if args.quick else SWEEP_BATCH_SIZES
        image_sizes = QUICK_SWEEP_IMAGE_SIZES if args.quick else SWEEP_IMAGE_SIZES
        sweep = {"batch_size": [], "image_size": []}
        for config in SWEEP_CONFIGS:
            for batch_size in batch_sizes:
                print(f"[bench_step] sweep {config} batch {batch_size} ...", file=sys.stderr, flush=True)
                point = run_child(child_command(args, config, batch_size, args.image_size, False))
                sweep["batch_size"].append({"config": config, "batch_size": batch_size, **point})
            for image_size in image_sizes:
                print(f"[bench_step] sweep {config} {image_size} px ...", file=sys.stderr, flush=True)
                point = run_child(child_command(args, config, args.batch_size, image_size, False))
                sweep["image_size"].append({"config": config, "image_size": image_size, **point})

    elapsed = time.perf_counter() - started
    threads = f", {args.threads or torch.get_num_threads()} threads" if device.type == "cpu" else ""
    header = (
        f"## BYOL step: {args.model}, {args.image_size} px, batch {args.batch_size}, {device}{threads}, "
        f"{args.steps} timed steps after {args.warmup} warm-up"
    )
    report = [header, "", results_table(results, device)]
    pieces = breakdown_table(results)
    if pieces:
        report += ["", "Time of the pieces of a step (ms, median over the timed steps; full step = the median above):", "", pieces]
    if sweep is not None:
        report += ["", sweep_tables(sweep)]
    loads = [r["load_average_at_start"][0] for r in results if "load_average_at_start" in r]
    report += [
        "",
        f"(images/s = batch size / median step time, counting input images; each gives two views. "
        f"1-min load average at the start of the configs: {', '.join(f'{x:.1f}' for x in loads)} "
        f"on {os.cpu_count()} CPUs. Total benchmark time {elapsed:.0f} s.)",
    ]
    print("\n".join(report))

    out = Path(args.out) if args.out else HERE / "results" / (
        f"step_{args.model}_{device.type}_{args.image_size}px_b{args.batch_size}"
        f"{f'_t{args.threads}' if args.threads else ''}{'_quick' if args.quick else ''}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "bench_step",
        "arguments": {k: v for k, v in vars(args).items() if k not in ("single", "breakdown")},
        "environment": environment(args, device),
        "results": results,
        "sweep": sweep,
        "elapsed_s": elapsed,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nJSON written to {out}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18", help="torchvision model name (default resnet18)")
    parser.add_argument("--image-size", type=int, default=None, help="input and view side in pixels (default 64)")
    parser.add_argument("--batch-size", type=int, default=None, help="images per step (default 64)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per configuration (default 10)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", default="all", help=f"comma list from {', '.join(ALL_CONFIGS)}; default all")
    parser.add_argument("--sweep", action="store_true", help="also step time vs batch size and image size")
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke run")
    parser.add_argument("--compile", action="store_true", help="include the torch.compile config on CPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=1, help="rounds of fresh subprocesses per config, pooled (default 1)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads in each config (default: torch's own default)"
    )
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/<name>.json)")
    parser.add_argument("--single", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--breakdown", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = {"image_size": 32, "batch_size": 8, "steps": 2, "warmup": 1}
    full = {"image_size": 64, "batch_size": 64, "steps": 10, "warmup": 2}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.batch_size < 2:
        parser.error("--batch-size must be at least 2 (the heads use batch norm)")
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.single is not None:
        result = run_single(args)
        print(RESULT_MARKER + json.dumps(result), flush=True)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
