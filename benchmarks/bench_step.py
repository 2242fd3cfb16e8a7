"""Benchmark of one BYOL training step under several speed settings.

A step is what a training loop does once per batch: ``loss = learner(images)``
(two augmented views, the online and the target networks, the loss), the
backward, an Adam step on the trainable parameters and the EMA update of the
target. Every configuration runs in a fresh subprocess of this script
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
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torchvision
from torch import nn

from byol_pytorch import BYOL
from byol_pytorch.devices import resolve_mixed_precision

HERE = Path(__file__).resolve().parent
RESULT_MARKER = "BENCH_RESULT_JSON "
ALL_CONFIGS = ("baseline", "foreach_ema", "bf16", "bf16_channels_last", "default", "concat", "compile",
               "compile_networks")
# The learner's networks, compiled one by one in compile_networks (the augmentation stays eager).
NETWORKS = ("online_encoder", "online_predictor", "target_encoder")  # each encoder holds its projector
BREAKDOWN_CONFIGS = ("baseline", "default")
SWEEP_CONFIGS = ("baseline", "default")
SWEEP_POINTS = {False: {"batch_size": (16, 32, 64), "image_size": (32, 64, 96)},
                True: {"batch_size": (4, 8), "image_size": (32, 48)}}  # keyed by --quick
# The learner's own submodules, timed by forward hooks; the rest of its forward is "rest_of_forward".
SUBMODULE_PIECES = {"augment": ("augment1", "augment2"),
                    "online_forward": ("online_encoder", "online_predictor"),
                    "target_forward": ("target_encoder",)}
PIECES = (*SUBMODULE_PIECES, "rest_of_forward", "backward", "optimizer_step", "ema_update")
PIECE_TITLES = ("augment (2 views)", "online fwd", "target fwd", "rest of fwd (loss, normalisation)",
                "backward", "Adam step", "EMA")


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """How a training step is run.

    Attributes:
        bf16: run the learner under ``torch.autocast`` in bfloat16.
        channels_last: network weights and views in channels-last memory format.
        fused_ema: the library's ``update_moving_average`` (one ``_foreach_lerp_``)
            instead of a Python loop over parameters.
        concat_views: both views through the networks in one batch.
        compile: ``torch.compile`` the BYOL module.
        compile_networks: ``torch.compile`` each of the learner's networks
            (``--compile-mode``), the augmentation and the loss eager.
    """

    bf16: bool = False
    channels_last: bool = False
    fused_ema: bool = False
    concat_views: bool = False
    compile: bool = False
    compile_networks: bool = False


def config_options(name: str, device: torch.device) -> StepOptions:
    """The :class:`StepOptions` of the configuration called ``name``.

    ``default`` is what the trainer does on ``device``: bf16 where the library's
    ``resolve_mixed_precision("auto", ...)`` picks it, channels-last, the fused
    EMA, one forward per view (as in the paper).
    """
    bf16 = resolve_mixed_precision("auto", device.type) == "bf16"
    default = StepOptions(bf16=bf16, channels_last=True, fused_ema=True)
    table = {
        "baseline": StepOptions(),
        "foreach_ema": StepOptions(fused_ema=True),
        "bf16": StepOptions(bf16=True, fused_ema=True),
        "bf16_channels_last": StepOptions(bf16=True, channels_last=True, fused_ema=True),
        "default": default,
        "concat": dataclasses.replace(default, concat_views=True),
        "compile": dataclasses.replace(default, compile=True),
        "compile_networks": dataclasses.replace(default, compile_networks=True),
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


def synchronizer(device: torch.device) -> Callable[[], None]:
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def rss_peak_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class Learner:
    """A BYOL module, its optimiser and the EMA update of one configuration."""

    def __init__(self, args: argparse.Namespace, options: StepOptions, device: torch.device) -> None:
        self.options, self.device = options, device
        torch.manual_seed(args.seed)
        net = torchvision.models.get_model(args.model, weights=None).to(device)
        self.byol = BYOL(net, image_size=args.image_size, concat_views=options.concat_views,
                         channels_last=options.channels_last).to(device)
        if options.channels_last:
            self.byol.to(memory_format=torch.channels_last)
        self.byol.train()
        self.optimizer = torch.optim.Adam([p for p in self.byol.parameters() if p.requires_grad], lr=3e-4)
        self.forward = torch.compile(self.byol) if options.compile else self.byol
        if options.compile_networks:
            for name in NETWORKS:  # the wrappers share the parameters: the EMA and Adam see the same tensors
                setattr(self.byol, name, torch.compile(getattr(self.byol, name), mode=args.compile_mode))
        generator = torch.Generator().manual_seed(args.seed)
        self.images = torch.rand(args.batch_size, 3, args.image_size, args.image_size, generator=generator).to(device)

    def update_target(self) -> None:
        if self.options.fused_ema:
            self.byol.update_moving_average()
        else:
            tau = self.byol.current_tau
            target, online = self.byol.target_encoder, self.byol.online_encoder
            python_loop_ema_(target.hidden_encoder, online.hidden_encoder, tau)  # the layers up to the hidden one
            python_loop_ema_(target.projector, online.projector, tau)

    def step(self, timer: PieceTimer | None = None) -> torch.Tensor:
        """One full training step, as a training loop would run it; ``timer`` times its blocks."""
        block = timer.block if timer is not None else (lambda _piece: contextlib.nullcontext())
        with block("forward"), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.options.bf16):
            loss = self.forward(self.images)
        with block("backward"):
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        with block("optimizer_step"):
            self.optimizer.step()
        with block("ema_update"):
            self.update_target()
        return loss.detach()


class PieceTimer:
    """Wall-clock time of a step's blocks and of the learner's own submodules (forward hooks)."""

    def __init__(self, sync: Callable[[], None]) -> None:
        self.sync = sync
        self.totals: dict[str, float] = defaultdict(float)
        self._started: dict[int, float] = {}

    @contextlib.contextmanager
    def block(self, piece: str) -> Iterator[None]:
        self.sync()
        start = time.perf_counter()
        yield
        self.sync()
        self.totals[piece] += time.perf_counter() - start

    @contextlib.contextmanager
    def submodules(self, byol: nn.Module) -> Iterator[None]:
        """Times every forward of the submodules of :data:`SUBMODULE_PIECES` while open."""
        modules = {id(m): (piece, m) for piece, names in SUBMODULE_PIECES.items()
                   for m in (getattr(byol, name) for name in names) if isinstance(m, nn.Module)}

        def enter(module: nn.Module, _args: object) -> None:
            self.sync()
            self._started[id(module)] = time.perf_counter()

        def leave(module: nn.Module, _args: object, _out: object) -> None:
            self.sync()
            self.totals[modules[id(module)][0]] += time.perf_counter() - self._started.pop(id(module))

        handles = [h for _, m in modules.values()
                   for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def pieces(self) -> dict[str, float]:
        """The step's pieces in seconds; the forward less its timed submodules is ``rest_of_forward``."""
        pieces = {piece: self.totals[piece] for piece in PIECES if piece != "rest_of_forward"}
        pieces["rest_of_forward"] = self.totals["forward"] - sum(self.totals[p] for p in SUBMODULE_PIECES)
        return pieces


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


def breakdown(learner: Learner, steps: int, sync: Callable[[], None]) -> dict[str, float]:
    """Median ms of each piece over ``steps`` more steps, timed through the learner's own modules."""
    per_step: dict[str, list[float]] = defaultdict(list)
    for _ in range(steps):
        timer = PieceTimer(sync)
        with timer.submodules(learner.byol):
            learner.step(timer)
        for piece, seconds in timer.pieces().items():
            per_step[piece].append(seconds * 1e3)
    pieces = {piece: statistics.median(values) for piece, values in per_step.items()}
    pieces["sum"] = sum(pieces[piece] for piece in PIECES)
    return pieces


def run_single(args: argparse.Namespace) -> dict:
    """Times one configuration in this process; its result as a JSON-ready dict."""
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    sync, options = synchronizer(device), config_options(args.single, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    load_at_start = os.getloadavg()
    learner = Learner(args, options, device)
    times = [t * 1e3 for t in time_steps(learner.step, args.warmup, args.steps, sync)]
    result: dict = {
        "config": args.single, "options": dataclasses.asdict(options), "model": args.model,
        "image_size": args.image_size, "batch_size": args.batch_size, "steps": args.steps, "warmup": args.warmup,
        "torch_threads": torch.get_num_threads(), **step_statistics(times, args.batch_size),
        "final_loss": learner.step().item(),  # untimed: shows the loss is finite
        "peak_rss_mib": rss_peak_mib(), "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg(),
    }
    if device.type == "cuda":
        result["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    if args.breakdown:
        result["breakdown_ms"] = breakdown(learner, args.steps, sync)
    return result


def step_statistics(times_ms: list[float], batch_size: int) -> dict:
    median = statistics.median(times_ms)
    return {"step_ms_all": times_ms, "step_ms_mean": statistics.fmean(times_ms), "step_ms_median": median,
            "step_ms_std": statistics.stdev(times_ms) if len(times_ms) > 1 else 0.0, "step_ms_min": min(times_ms),
            # The median: robust to the odd step slowed by other work on a shared machine.
            "images_per_s": batch_size / (median / 1e3)}


# -- the driver ------------------------------------------------------------------------


def run_child(args: argparse.Namespace, config: str, batch_size: int, image_size: int, breakdown: bool) -> dict:
    """Runs one configuration in a fresh process of this script; its result, or an ``error``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--single", config, "--model", args.model,
               "--image-size", str(image_size), "--batch-size", str(batch_size), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--device", args.device, "--seed", str(args.seed)]
    command += ["--threads", str(args.threads)] if args.threads else []
    command += ["--compile-mode", args.compile_mode] if args.compile_mode else []
    command += ["--breakdown"] if breakdown else []
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return {"config": config, **json.loads(line[len(RESULT_MARKER):])}
    return {"config": config, "error": f"exit status {completed.returncode}; see the messages above"}


def merge_runs(runs: list[dict]) -> dict:
    """One result from the repeats of a config: statistics over all their timed steps."""
    good = [r for r in runs if "error" not in r]
    if len(good) < 2:
        return {**(good or runs)[0], "repeats": len(good)}
    merged = {**good[0], **step_statistics([t for r in good for t in r["step_ms_all"]], good[0]["batch_size"]),
              "repeats": len(good), "runs": good, "peak_rss_mib": max(r["peak_rss_mib"] for r in good),
              "load_average_at_start": min(r["load_average_at_start"] for r in good)}
    if "cuda_max_memory_allocated_mib" in good[0]:
        merged["cuda_max_memory_allocated_mib"] = max(r["cuda_max_memory_allocated_mib"] for r in good)
    if "breakdown_ms" in good[0]:
        # Each run's breakdown is a median per piece; keep the least disturbed run's value.
        pieces = {piece: min(r["breakdown_ms"][piece] for r in good) for piece in PIECES}
        merged["breakdown_ms"] = {**pieces, "sum": sum(pieces.values())}
    return merged


def run_configs(args: argparse.Namespace, configs: list[str]) -> list[dict]:
    # Rounds over all configs (rather than repeats of one config in a row), so
    # that a busy spell of a shared machine is spread over the configs.
    runs: dict[str, list[dict]] = {config: [] for config in configs}
    for round_ in range(args.repeats):
        for config in configs:
            label = f" (round {round_ + 1}/{args.repeats})" if args.repeats > 1 else ""
            print(f"[bench_step] {config}{label} ...", file=sys.stderr, flush=True)
            runs[config].append(run_child(args, config, args.batch_size, args.image_size,
                                          config in BREAKDOWN_CONFIGS))
    return [merge_runs(runs[config]) for config in configs]


def run_sweep(args: argparse.Namespace) -> dict[str, list[dict]]:
    """Step time against batch size (at ``--image-size``) and against image size (at ``--batch-size``)."""
    sweep: dict[str, list[dict]] = {"batch_size": [], "image_size": []}
    for config in SWEEP_CONFIGS:
        for axis, values in SWEEP_POINTS[args.quick].items():
            for value in values:
                print(f"[bench_step] sweep {config} {axis} {value} ...", file=sys.stderr, flush=True)
                sizes = {"batch_size": args.batch_size, "image_size": args.image_size, axis: value}
                sweep[axis].append({**run_child(args, config, sizes["batch_size"], sizes["image_size"], False),
                                    axis: value})
    return sweep


# -- the report ------------------------------------------------------------------------


def flags(options: dict) -> str:
    parts = ["bf16" if options["bf16"] else "fp32", "channels_last" if options["channels_last"] else "contiguous",
             "fused EMA" if options["fused_ema"] else "loop EMA",
             "concat views" if options["concat_views"] else "view by view"]
    return ", ".join(parts + (["compiled"] if options["compile"] else [])
                     + (["networks compiled"] if options.get("compile_networks") else []))


def results_table(results: list[dict], device: torch.device) -> str:
    base = next((r for r in results if r["config"] == "baseline" and "error" not in r), None)
    cuda = device.type == "cuda"
    lines = [("| config | settings | ms/step median | ms/step min | images/s | speed-up vs baseline (median) "
              f"| speed-up (min) | {'CUDA max allocated' if cuda else 'peak RSS'} (MiB) |"),
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['config']} | failed: {r['error']} | | | | | | |")
            continue
        speedups = [f"{base[key] / r[key]:.2f}x" if base else "n/a" for key in ("step_ms_median", "step_ms_min")]
        memory = r["cuda_max_memory_allocated_mib"] if cuda else r["peak_rss_mib"]
        lines.append(f"| {r['config']} | {flags(r['options'])} | {r['step_ms_median']:.0f} | {r['step_ms_min']:.0f} "
                     f"| {r['images_per_s']:.1f} | {speedups[0]} | {speedups[1]} | {memory:.0f} |")
    return "\n".join(lines)


def breakdown_table(results: list[dict]) -> str:
    rows = [r for r in results if "breakdown_ms" in r]
    if not rows:
        return ""
    lines = ["| config | " + " | ".join(PIECE_TITLES) + " | sum of pieces | full step |",
             "|---|" + "---:|" * (len(PIECES) + 2)]
    for r in rows:
        cells = [f"{r['breakdown_ms'][piece]:.1f}" for piece in (*PIECES, "sum")]
        lines.append(f"| {r['config']} | " + " | ".join(cells) + f" | {r['step_ms_median']:.1f} |")
    lines += ["", "Share of the sum of pieces:", ""]
    for r in rows:
        shares = ", ".join(f"{title} {100 * r['breakdown_ms'][piece] / r['breakdown_ms']['sum']:.0f}%"
                           for piece, title in zip(PIECES, PIECE_TITLES))
        lines.append(f"- {r['config']}: {shares}")
    return "\n".join(lines)


def sweep_tables(sweep: dict[str, list[dict]]) -> str:
    out = []
    for axis, fixed in (("batch_size", "image_size"), ("image_size", "batch_size")):
        points = [p for p in sweep[axis] if "error" not in p]
        if not points:
            continue
        ms = {(p["config"], p[axis]): p["step_ms_median"] for p in points}
        lines = [f"| {axis.replace('_', ' ')} | " + " | ".join(f"{c} ms/step" for c in SWEEP_CONFIGS)
                 + " | speed-up |", "|---:|" + "---:|" * (len(SWEEP_CONFIGS) + 1)]
        for value in sorted({p[axis] for p in points}):
            cells = [f"{ms[(c, value)]:.0f}" if (c, value) in ms else "" for c in SWEEP_CONFIGS]
            both = ("baseline", value) in ms and ("default", value) in ms
            speedup = f"{ms[('baseline', value)] / ms[('default', value)]:.2f}x" if both else ""
            lines.append(f"| {value} | " + " | ".join(cells) + f" | {speedup} |")
        out.append(f"Step time vs {axis.replace('_', ' ')} ({fixed.replace('_', ' ')} {points[0][fixed]}):\n\n"
                   + "\n".join(lines))
    return "\n\n".join(out)


def environment(args: argparse.Namespace, device: torch.device) -> dict:
    info = {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "device": str(device),
            "cpu_count": os.cpu_count(), "torch_threads": args.threads or torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mixed_precision_auto": resolve_mixed_precision("auto", device.type),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                                text=True, check=False).stdout.strip()
        info["git_commit"] = commit or None
    return info


def report(args: argparse.Namespace, device: torch.device, results: list[dict], sweep: dict | None,
           elapsed: float) -> str:
    threads = f", {args.threads or torch.get_num_threads()} threads" if device.type == "cpu" else ""
    title = (f"## BYOL step: {args.model}, {args.image_size} px, batch {args.batch_size}, {device}{threads}, "
             f"{args.steps} timed steps after {args.warmup} warm-up")
    lines = [title, "", results_table(results, device)]
    pieces = breakdown_table(results)
    if pieces:
        lines += ["", ("Time of the pieces of a step (ms, median over as many further steps; "
                       "full step = the median above):"), "", pieces]
    if sweep is not None:
        lines += ["", sweep_tables(sweep)]
    loads = ", ".join(f"{r['load_average_at_start'][0]:.1f}" for r in results if "load_average_at_start" in r)
    lines += ["", (f"(images/s = batch size / median step time, counting input images; each gives two views. "
                   f"1-min load average at the start of the configs: {loads} on {os.cpu_count()} CPUs. "
                   f"Total benchmark time {elapsed:.0f} s.)")]
    return "\n".join(lines)


def run_all(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    if args.configs == "all":
        configs = [c for c in ALL_CONFIGS if not c.startswith("compile") or args.compile or device.type == "cuda"]
    else:
        configs = [c.strip() for c in args.configs.split(",") if c.strip()]
        for config in configs:
            config_options(config, device)  # fails early on an unknown name
    started = time.perf_counter()
    results = run_configs(args, configs)
    sweep = run_sweep(args) if args.sweep else None
    elapsed = time.perf_counter() - started
    print(report(args, device, results, sweep, elapsed))

    out = Path(args.out) if args.out else HERE / "results" / (
        f"step_{args.model}_{device.type}_{args.image_size}px_b{args.batch_size}"
        f"{f'_t{args.threads}' if args.threads else ''}{'_quick' if args.quick else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": "bench_step",
               "arguments": {k: v for k, v in vars(args).items() if k not in ("single", "breakdown")},
               "environment": environment(args, device), "results": results, "sweep": sweep, "elapsed_s": elapsed}
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
    parser.add_argument("--compile", action="store_true", help="include the torch.compile configs on CPU")
    parser.add_argument("--compile-mode", default=None,
                        help="torch.compile mode of compile_networks, e.g. max-autotune-no-cudagraphs (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds of fresh subprocesses per config, pooled (default 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads in each config (default: torch's own default)")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/<name>.json)")
    parser.add_argument("--single", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--breakdown", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = ({"image_size": 32, "batch_size": 8, "steps": 2, "warmup": 1} if args.quick
             else {"image_size": 64, "batch_size": 64, "steps": 10, "warmup": 2})
    for key, value in sizes.items():
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
        print(RESULT_MARKER + json.dumps(run_single(args)), flush=True)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
