"""``byol-pytorch train``: pretrain a network, then score it against its random initialisation."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from ..config import TrainerConfig
from ..data import DigitsDataset
from ..devices import set_cpu_threads
from ..model import digit_augmentations
from ..trackers import check_trackers
from .common import PROG, CLIError, first_line, write_json
from .datasets import EvaluationSets, evaluation_sets, image_folder
from .flags import config_options
from .runs import check_run_dir_on_main, process_state, resolve_run_dir, run_spec
from .scoring import monitor_baseline, score_backbones, score_table

# The views ``--augment`` chooses from; ``auto`` is ``digits`` on the built-in digits, else ``paper``.
AUGMENTATIONS = ("auto", "paper", "digits")


def cmd_train(args: argparse.Namespace) -> int:
    from ..trainer import BYOLTrainer

    started = time.perf_counter()
    # Everything that can be checked is checked before anything is written.
    digits = args.data is None
    options = _checked_options(args)
    state = process_state()
    run_dir = resolve_run_dir(args)
    previous = check_run_dir_on_main(run_dir, options["resume"])
    spec, net = run_spec(args, previous, state.device.type)
    size = spec["image_size"]
    train_set = (DigitsDataset(size, split="train") if digits
                 else image_folder(args.data, size, labelled=False, flag="--data"))
    if len(train_set) < options["batch_size"] * state.num_processes:
        raise CLIError(f"{len(train_set)} images are fewer than one batch ({options['batch_size']} x "
                       f"{state.num_processes} processes); lower --batch-size or add images")
    eval_sets = None
    if digits or args.eval_data:
        eval_sets = evaluation_sets(args.eval_data, size, "--eval-data")
    threads = set_cpu_threads(args.threads) if state.device.type == "cpu" else None
    state.wait_for_everyone()  # every process has checked the folder before the main one writes to it

    options.update(output_dir=str(run_dir), hidden_layer=spec["hidden_layer"])
    monitor = eval_sets.whole if eval_sets else None
    views: dict[str, Any] = {}
    if spec["augment"] == "digits":
        view_1, view_2 = digit_augmentations(size)
        views = {"augment_fn": view_1, "augment_fn2": view_2, "normalize": True}
    created = not run_dir.exists()
    try:
        trainer = BYOLTrainer(net, train_set, size, eval_dataset=monitor, **views, **options)
    except (RuntimeError, AssertionError) as err:
        raise CLIError(f"{spec['model']} cannot run on {size}-px images ({first_line(err)}); "
                       "try a larger --image-size") from err
    is_main = trainer.accelerator.is_main_process
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not (run_dir / "run.json").exists():
            write_json(run_dir / "run.json", spec)
        data_name = "the built-in digits" if digits else args.data
        where = f"{state.num_processes} processes" if state.num_processes > 1 else str(state.device) + (
            f", {threads} thread{'s' if threads != 1 else ''}" if threads else "")
        print(f"BYOL: {spec['model']} ({spec['hidden_layer']!r} features"
              f"{', small-image stem' if spec['small_image_stem'] else ''}) on {len(train_set)} images of "
              f"{data_name} at {size} px; {options['num_train_steps']} steps of {options['batch_size']} on {where}; "
              f"run folder {run_dir}", flush=True)

    train_start = time.perf_counter()
    first_step = trainer.step
    try:
        trainer()
    except KeyboardInterrupt:
        if is_main:
            print(f"\ninterrupted; continue with: {PROG} train --out {run_dir} --resume", file=sys.stderr)
        return 130
    except BaseException:
        if is_main and created and sorted(p.name for p in run_dir.iterdir()) == ["run.json"]:
            (run_dir / "run.json").unlink()  # nothing was trained: leave no folder that blocks a retry
            run_dir.rmdir()
        raise
    train_time = time.perf_counter() - train_start
    if not is_main:
        return 0

    return _finish(args, trainer, spec, eval_sets, options, state.device, run_dir,
                   trainer.step - first_step, train_time, started, threads)


def _checked_options(args: argparse.Namespace) -> dict[str, Any]:
    """The trainer options of the flags, validated; errors name the flag."""
    if args.simsiam:
        args.use_momentum = False
    options = config_options(args)
    if options["num_workers"] is None and args.data is None:
        options["num_workers"] = 0  # the digits are held in memory
    probe = {**options, "output_dir": "unused", "hidden_layer": 0}
    try:
        TrainerConfig.from_kwargs(**probe)
    except ValueError as err:
        message = first_line(err)
        field = message.split(" ", 1)[0]
        if field in {f.name for f in dataclasses.fields(TrainerConfig)}:
            message = "--" + field.replace("_", "-") + message[len(field):]
        raise CLIError(message) from err
    try:
        check_trackers(options["log_with"])
    except ValueError as err:
        raise CLIError("--log-with" + first_line(err).removeprefix("log_with")) from err
    return options


def _finish(args: argparse.Namespace, trainer: Any, spec: dict[str, Any], eval_sets: EvaluationSets | None,
            options: dict[str, Any], device: Any, run_dir: Path, done: int, train_time: float, started: float,
            threads: int | None) -> int:
    """Scores the trained network, writes summary.json and report.png and prints the result (main process)."""
    from ..report import draw_report  # matplotlib: loaded only once training is done
    from ..trainer import load_metrics

    size = spec["image_size"]
    images_per_second = done * trainer.global_batch_size / max(train_time, 1e-9)
    metrics = load_metrics(run_dir)
    losses = [r["loss"] for r in metrics if "loss" in r]
    summary: dict[str, Any] = {
        "steps": trainer.step, "steps_this_session": done, "train_time_s": round(train_time, 2),
        "images_per_second": round(images_per_second, 2), "final_loss": losses[-1] if losses else None,
        "model": spec["model"], "image_size": size, "hidden_layer": spec["hidden_layer"],
        "representation_dim": trainer.learner.representation_dim,
        "processes": trainer.accelerator.num_processes, "cpu_threads": threads,
        "mixed_precision": trainer.accelerator.mixed_precision,
        # How long the main process's loop waited for batches (data_wait_s per interval: metrics.jsonl).
        "data_wait_s": round(trainer.data_wait_s, 3),
        "data_wait_fraction": round(min(1.0, trainer.data_wait_s / max(train_time, 1e-9)), 4),
    }
    scored = eval_sets is not None and args.final_eval
    if scored:
        print(f"scoring the trained network and its random initialisation on {eval_sets.description()} ...",
              flush=True)
        scores = score_backbones(spec, trainer.net, eval_sets.bank, eval_sets.query, k=options["knn_k"],
                                 device=device, progress=options["progress"])
        if options["knn_every"]:
            summary["knn_monitor_random_init"] = monitor_baseline(spec, eval_sets.whole, options["knn_k"], device)
        description = eval_sets.description()  # now every file has been read: unreadable ones are known
        summary.update({
            "eval_data": args.eval_data or "digits", "eval_data_description": description, "k": options["knn_k"],
            "knn_top1": {row: scores[row]["knn_top1"] for row in scores},
            "linear_probe_top1": {row: scores[row]["linear_probe_top1"] for row in scores},
        })
    summary["wall_time_s"] = round(time.perf_counter() - started, 2)
    write_json(run_dir / "summary.json", summary)
    draw_report(metrics, run_dir / "report.png", representation_dim=trainer.learner.representation_dim,
                summary=summary, title=f"BYOL {spec['model']} at {size} px: {run_dir}")

    minutes, seconds = divmod(summary["wall_time_s"], 60)
    print(f"\ndone: {trainer.step} steps, {int(minutes)}m{seconds:04.1f}s in all, {images_per_second:.0f} images/s "
          f"while training; final loss {summary['final_loss']:.4f}" if losses else
          f"\ndone: {trainer.step} steps in {summary['wall_time_s']:.1f}s")
    if scored:
        print(f"{spec['model']} {spec['hidden_layer']!r} features, {summary['eval_data_description']}:")
        print(score_table(scores))
    elif args.final_eval:
        print("(no labelled images to score the representation on: pass --eval-data LABELLED_DIR)")
    print(f"wrote {run_dir}/net.pt and net.safetensors (the network's state_dict), summary.json, report.png; "
          f"later: {PROG} eval --checkpoint {run_dir}")
    return 0
