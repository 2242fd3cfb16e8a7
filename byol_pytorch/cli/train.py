"""``byol-pytorch train``: pretrain a network, then score it against its random initialisation."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from ..config import TrainerConfig
from ..data import UnreadableReports
from ..devices import set_cpu_threads
from ..errors import ImageSizeError
from ..metrics import load_metrics
from ..model import digit_augmentations
from ..preemption import TrainingStopped
from ..trackers import check_trackers
from .common import PROG, CLIError, first_line, write_json
from .datasets import EvaluationSets, evaluation_sets, image_count, training_set
from .flags import config_options
from .runs import check_run_dir_on_main, process_state, resolve_run_dir, run_spec
from .scoring import monitor_baseline, score_backbones, score_table

# The views ``--augment`` chooses from; ``auto`` is ``digits`` on the built-in digits, else ``paper``.
AUGMENTATIONS = ("auto", "paper", "digits")


@dataclass
class TrainJob:
    """Everything ``train`` decided before training: checked on every process, nothing written yet."""

    args: argparse.Namespace
    options: dict[str, Any]  # the trainer's keywords: TrainerConfig fields, and BYOL arguments such as crop_scale
    spec: dict[str, Any]  # run.json
    net: nn.Module
    train_set: Dataset
    eval_sets: EvaluationSets | None
    run_dir: Path
    state: Any  # accelerate's PartialState: rank, process count, device
    threads: int | None  # CPU threads, or None on a GPU

    @property
    def on_digits(self) -> bool:
        return self.args.data is None


@dataclass
class TrainTimes:
    """How long the command took: all of it (from ``started``), and the training itself."""

    started: float
    train_time: float
    steps_done: int


def cmd_train(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    job = _plan(args)
    created = not job.run_dir.exists()
    trainer = _build_trainer(job)
    is_main = trainer.accelerator.is_main_process
    if is_main:
        _write_run_description(job)
        print(_announcement(job), flush=True)
    train_start = time.perf_counter()
    try:
        trainer()
    except TrainingStopped as stopped:
        if is_main:
            print(f"{PROG}: {stopped}; exit status {stopped.code}. Continue with: {PROG} train --out {job.run_dir} "
                  "--resume", file=sys.stderr)
        return int(stopped.code)
    except KeyboardInterrupt:
        if is_main:
            print(f"\ninterrupted; continue with: {PROG} train --out {job.run_dir} --resume", file=sys.stderr)
        return 130
    except BaseException:
        if is_main and created:
            _remove_untrained_run_dir(job.run_dir)
        raise
    if not is_main:
        return 0
    # The steps of this session: a resumed run started from its checkpoint's step, read once trainer() loaded it.
    steps_done = trainer.step - trainer.start_step
    return _finish(job, trainer, TrainTimes(started, time.perf_counter() - train_start, steps_done))


def _plan(args: argparse.Namespace) -> TrainJob:
    """Checks every flag, folder and size, on every process, before anything is written."""
    options = _checked_options(args)
    state = process_state()
    run_dir = resolve_run_dir(args)
    previous = check_run_dir_on_main(run_dir, options["resume"])
    spec, net = run_spec(args, previous, state.device.type)
    size = spec["image_size"]
    reports = UnreadableReports()  # the training and evaluation copies of one folder name a broken file once
    train_set = training_set(args.data, size, batch_size=options["batch_size"], rank=state.process_index,
                             world_size=state.num_processes, image_key=options["image_key"], seed=options["seed"],
                             shuffle_buffer=options["shuffle_buffer"], reports=reports)
    if args.crop_scale is not None and spec["augment"] != "paper":
        raise CLIError(f"--crop-scale sets the crops of the 'paper' views; these are the {spec['augment']!r} views "
                       "(--augment paper to use it)")
    eval_sets = None
    if args.data is None or args.eval_data:
        eval_sets = evaluation_sets(args.eval_data, size, "--eval-data", image_key=options["image_key"],
                                    label_column=args.label_column, reports=reports)
    threads = set_cpu_threads(args.threads) if state.device.type == "cpu" else None
    options.update(output_dir=str(run_dir), hidden_layer=spec["hidden_layer"])
    if args.crop_scale is not None:
        options["crop_scale"] = tuple(args.crop_scale)  # a BYOL argument, which the trainer passes on
    state.wait_for_everyone()  # every process has checked the folder before the main one writes to it
    return TrainJob(args, options, spec, net, train_set, eval_sets, run_dir, state, threads)


def _checked_options(args: argparse.Namespace) -> dict[str, Any]:
    """The trainer options of the flags, validated (an out-of-range one raises OptionError, naming it)."""
    if args.simsiam:
        args.use_momentum = False
    options = config_options(args)
    if options["num_workers"] is None and args.data is None:
        options["num_workers"] = 0  # the digits are held in memory
    # Placeholders for the two options decided later from the run folder and the model.
    TrainerConfig.from_kwargs(**{**options, "output_dir": "unused", "hidden_layer": 0})
    check_trackers(options["log_with"])
    return options


def _build_trainer(job: TrainJob) -> Any:
    from ..trainer import BYOLTrainer  # accelerate: loaded only to train

    size = job.spec["image_size"]
    views: dict[str, Any] = {}
    if job.spec["augment"] == "digits":
        view_1, view_2 = digit_augmentations(size)
        views = {"augment_fn": view_1, "augment_fn2": view_2, "normalize": True}
    monitor = job.eval_sets.whole if job.eval_sets else None
    try:
        return BYOLTrainer(job.net, job.train_set, size, eval_dataset=monitor, **views, **job.options)
    except ImageSizeError as err:
        raise CLIError(f"--image-size {size}: {job.spec['model']}: {first_line(err)}") from err


def _write_run_description(job: TrainJob) -> None:
    job.run_dir.mkdir(parents=True, exist_ok=True)
    if not (job.run_dir / "run.json").exists():
        write_json(job.run_dir / "run.json", job.spec)


def _remove_untrained_run_dir(run_dir: Path) -> None:
    """Removes a run folder this command created if nothing was trained in it, so it blocks no retry."""
    if sorted(p.name for p in run_dir.iterdir()) == ["run.json"]:
        (run_dir / "run.json").unlink()
        run_dir.rmdir()


def _announcement(job: TrainJob) -> str:
    spec, options, state = job.spec, job.options, job.state
    data_name = "the built-in digits" if job.on_digits else job.args.data
    if state.num_processes > 1:
        where = f"{state.num_processes} processes"
    else:
        where = str(state.device) + (f", {job.threads} thread{'s' if job.threads != 1 else ''}" if job.threads else "")
    stem = ", small-image stem" if spec["small_image_stem"] else ""
    return (f"BYOL: {spec['model']} ({spec['hidden_layer']!r} features{stem}) on {image_count(job.train_set)} of "
            f"{data_name} at {spec['image_size']} px; {options['num_train_steps']} steps of {options['batch_size']} "
            f"on {where}; run folder {job.run_dir}")


def _finish(job: TrainJob, trainer: Any, times: TrainTimes) -> int:
    """Scores the trained network, writes summary.json and report.png and prints the result (main process)."""
    from ..report import draw_report  # matplotlib: loaded only once training is done

    metrics = load_metrics(job.run_dir)
    summary = _training_summary(job, trainer, times, metrics)
    scores = None
    if job.eval_sets is not None and job.args.final_eval:
        scores = _score(job, trainer, summary)
    summary["wall_time_s"] = round(time.perf_counter() - times.started, 2)
    write_json(job.run_dir / "summary.json", summary)
    draw_report(metrics, job.run_dir / "report.png", representation_dim=trainer.learner.representation_dim,
                summary=summary, title=f"BYOL {job.spec['model']} at {job.spec['image_size']} px: {job.run_dir}")
    _print_result(job, summary, scores)
    return 0


def _training_summary(job: TrainJob, trainer: Any, times: TrainTimes, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    losses = [r["loss"] for r in metrics if "loss" in r]
    train_time = max(times.train_time, 1e-9)
    return {
        "steps": trainer.step, "steps_this_session": times.steps_done, "train_time_s": round(times.train_time, 2),
        "images_per_second": round(times.steps_done * trainer.global_batch_size / train_time, 2),
        "final_loss": losses[-1] if losses else None,
        "model": job.spec["model"], "image_size": job.spec["image_size"], "hidden_layer": job.spec["hidden_layer"],
        "representation_dim": trainer.learner.representation_dim,
        "processes": trainer.accelerator.num_processes, "cpu_threads": job.threads,
        "mixed_precision": trainer.accelerator.mixed_precision,
        # How long the main process's loop waited for batches (data_wait_s per interval: metrics.jsonl).
        "data_wait_s": round(trainer.data_wait_s, 3),
        "data_wait_fraction": round(min(1.0, trainer.data_wait_s / train_time), 4),
    }


def _score(job: TrainJob, trainer: Any, summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    """kNN and linear-probe top-1 of the trained network and its random initialisation, added to ``summary``."""
    sets, k = job.eval_sets, job.options["knn_k"]
    assert sets is not None
    print(f"scoring the trained network and its random initialisation on {sets.description()} ...", flush=True)
    device = job.state.device
    scores = score_backbones(job.spec, trainer.net, sets.bank, sets.query, k=k, device=device,
                             progress=job.options["progress"])
    if job.options["knn_every"]:
        summary["knn_monitor_random_init"] = monitor_baseline(job.spec, sets.whole, k, device)
    summary.update({
        "eval_data": job.args.eval_data or "digits",
        # Described now that every file has been read: the unreadable ones are known.
        "eval_data_description": sets.description(), "k": k,
        "knn_top1": {row: scores[row]["knn_top1"] for row in scores},
        "linear_probe_top1": {row: scores[row]["linear_probe_top1"] for row in scores},
    })
    return scores


def _print_result(job: TrainJob, summary: dict[str, Any], scores: dict[str, dict[str, float]] | None) -> None:
    minutes, seconds = divmod(summary["wall_time_s"], 60)
    if summary["final_loss"] is not None:
        print(f"\ndone: {summary['steps']} steps, {int(minutes)}m{seconds:04.1f}s in all, "
              f"{summary['images_per_second']:.0f} images/s while training; final loss {summary['final_loss']:.4f}")
    else:
        print(f"\ndone: {summary['steps']} steps in {summary['wall_time_s']:.1f}s")
    if scores is not None:
        print(f"{job.spec['model']} {job.spec['hidden_layer']!r} features, {summary['eval_data_description']}:")
        print(score_table(scores))
    elif job.args.final_eval:
        print("(no labelled images to score the representation on: pass --eval-data LABELLED_DIR)")
    print(f"wrote {job.run_dir}/net.pt and net.safetensors (the network's state_dict), summary.json, report.png; "
          f"later: {PROG} eval --checkpoint {job.run_dir}")
