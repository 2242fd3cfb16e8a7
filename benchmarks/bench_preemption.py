"""What the stop check costs a step: two processes (gloo on CPU), signals handled or not, side by side.

With signals handled, each optimiser step starts a non-blocking all-reduce of
the stop request on a gloo group and waits for the previous step's one; with
``handle_signals=False`` nothing travels. Both variants run in alternation,
``--repeats`` times each, and the step rate of the steps after the warm-up is
compared. ``--code DIR`` runs another checkout's package (say main before the
check existed, in which case ``handle_signals`` is not passed).

    python benchmarks/bench_preemption.py                       # this checkout, on and off
    python benchmarks/bench_preemption.py --code /tmp/mainref   # another checkout, as it is

Writes ``benchmarks/results/preemption.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]


def worker(out: Path, steps: int, handle: str) -> None:
    """One process of a launch: trains, and the main process writes the per-interval step times."""
    import torch
    from torchvision.models import resnet18

    from byol_pytorch import BYOLTrainer, MockDataset

    torch.manual_seed(0)
    options = {"handle_signals": handle == "on"} if _config_has("handle_signals") else {}
    trainer = BYOLTrainer(resnet18(), dataset=MockDataset(32, 1024), image_size=32, hidden_layer="avgpool",
                          num_train_steps=steps, batch_size=16, checkpoint_every=10_000, output_dir=str(out),
                          num_workers=0, mixed_precision="no", progress=False, log_every=5, **options)
    trainer()
    if trainer.accelerator.is_main_process:
        rates = [r["images_per_second"] for r in trainer.history if "images_per_second" in r]
        (out / "rates.json").write_text(json.dumps(rates))


def _config_has(name: str) -> bool:
    from byol_pytorch import TrainerConfig

    return name in TrainerConfig.__dataclass_fields__


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(code: Path, handle: str, steps: int) -> list[float]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1",
               "PYTHONPATH": f"{code}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   "--main_process_port", str(free_port()), str(HERE), "--worker", str(out), str(steps), handle]
        subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        return json.loads((out / "rates.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose byol_pytorch runs")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker[0]), int(args.worker[1]), args.worker[2])
        return
    results: dict[str, list[float]] = {"on": [], "off": []}
    for repeat in range(args.repeats):
        for handle in ("on", "off"):
            rates = launch(args.code, handle, args.steps)
            results[handle].append(statistics.mean(rates[1:]))  # the first interval holds the warm-up
            print(f"repeat {repeat + 1}, signals {handle}: {results[handle][-1]:.1f} images/s", flush=True)
    summary = {handle: {"images_per_second": rates, "median": statistics.median(rates)}
               for handle, rates in results.items()}
    summary["setting"] = {"code": str(args.code), "processes": 2, "backend": "gloo (CPU)", "model": "resnet18",
                          "image_size": 32, "batch_size_per_process": 16, "steps": args.steps}
    ratio = summary["on"]["median"] / summary["off"]["median"]
    summary["on_over_off"] = ratio
    print(f"median images/s: signals handled {summary['on']['median']:.1f}, not handled "
          f"{summary['off']['median']:.1f} ({ratio:.3f}x)")
    results_dir = ROOT / "benchmarks" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "preemption.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
