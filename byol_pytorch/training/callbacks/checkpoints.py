"""Checkpointing as callbacks: resuming a run where its checkpoint left it, and saving (and keeping) checkpoints."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ...checkpoint import list_checkpoints, remove_stale_temporaries
from ...distributed import gather_objects
from ...errors import DiskFullError
from ...metrics import set_aside_records_after
from ...run_state import (
    RunLayout,
    checkpoint_contents,
    find_resume_point,
    load_contents,
    restore_process_state,
    resume_changes,
    start_position,
    write_checkpoint,
)
from .base import TrainerCallback, TrainerControl, TrainerState


def refuse_existing_run(output_dir: Path, resume: bool | str) -> None:
    """Raises ``FileExistsError`` when ``output_dir`` holds checkpoints and ``resume`` is off."""
    if not resume and list_checkpoints(output_dir):
        raise FileExistsError(f"{output_dir} already holds checkpoints; pass resume=True to continue that run "
                              "or choose another output_dir")


def run_layout(trainer: Any) -> RunLayout:
    """Processes, batch and schedule of the trainer's run, as its checkpoints record them."""
    c = trainer.config
    return RunLayout(trainer.accelerator.num_processes, c.batch_size, c.gradient_accumulation_steps,
                     float(trainer.scheduler.base_lrs[0]), c.num_train_steps)


def save_checkpoint(trainer: Any, stopping: bool = False) -> Path | None:
    """Writes the trainer's whole state, ``net.pt`` and ``net.safetensors`` (main process); returns the path.

    A collective: every process must call it (batch-norm statistics are
    averaged, random states and stream positions gathered). ``stopping``: a
    stop request's checkpoint, which keeps each process's own statistics too.

    Raises:
        NonFiniteStateError: a tensor of the state is not finite; nothing is written.
        DiskFullError: the disk filled up; what was saved before is intact.
    """
    acc, state = trainer.accelerator, trainer.state
    stream = trainer.data.state_dict()  # a stream's place: each process's loader positions
    streams = gather_objects(acc, stream) if stream is not None else None
    extra = {cb.checkpoint_key: cb.state_dict() for cb in trainer.callbacks if cb.checkpoint_key}

    def contents(rng: list[dict[str, Any]], buffers: list[dict[str, Any]] | None) -> dict[str, Any]:
        saved = checkpoint_contents(
            step=state.step, images_seen=state.images_seen, learner=trainer.learner, optimizer=trainer.optimizer,
            scheduler=trainer.scheduler, scaler=acc.scaler, probe=None, config=trainer.config.to_dict(), rng=rng,
            buffers=buffers, layout=run_layout(trainer), streams=streams)
        return {**saved, **{key: value for key, value in extra.items() if value is not None}}

    return write_checkpoint(acc, net=trainer.net, learner=trainer.learner, optimizer=trainer.optimizer,
                            step=state.step, output_dir=trainer.output_dir, keep=trainer.config.keep_checkpoints,
                            contents=contents, stopping=stopping)


def resume(trainer: Any) -> None:
    """Loads the checkpoint that ``resume`` names, if any, into the trainer, its state and its callbacks.

    Says in one line (main process) what it resumed, or that there was nothing
    to resume, and warns of options that changed; records of ``metrics.jsonl``
    past the resumed step, written by the run that stopped, are set aside so
    that each step appears once.
    """
    acc, c, state = trainer.accelerator, trainer.config, trainer.state
    resume_from, saved, notes = find_resume_point(acc, c.resume, trainer.output_dir)
    if acc.is_main_process:
        for note in notes:
            warnings.warn(note, stacklevel=2)
    if saved is not None:
        changes = resume_changes(saved, run_layout(trainer), c.optimizer if trainer.optimizer_klass is None else "",
                                 c.to_dict())
        load_contents(saved, learner=trainer.learner, optimizer=trainer.optimizer, scheduler=trainer.scheduler,
                      scaler=acc.scaler)
        restore_process_state(saved, trainer.learner, acc.process_index, acc.num_processes, c.seed)
        state.step, state.images_seen = int(saved["step"]), start_position(saved, trainer.data.length)
        trainer.data.load_state_dict(saved.get("streams"))
        for callback in trainer.callbacks:
            if callback.checkpoint_key and callback.checkpoint_key in saved:
                callback.load_state_dict(saved[callback.checkpoint_key])
        if changes and acc.is_main_process:
            warnings.warn(changes, stacklevel=2)
        where = f" (the main process's choice, sent to all {acc.num_processes})" if acc.num_processes > 1 else ""
        acc.print(f"resumed from {resume_from} at step {state.step}{where}")
    elif c.resume:
        acc.print(f"nothing to resume in {trainer.output_dir}: no checkpoint yet; starting a new run")
    if c.resume and acc.is_main_process:
        moved = set_aside_records_after(trainer.output_dir, state.step)
        if moved:
            acc.print(f"set aside {moved} record(s) of metrics.jsonl past step {state.step}, written by the "
                      "run that stopped, in metrics.superseded.jsonl")


def disk_full(err: DiskFullError, step: int, output_dir: Path) -> DiskFullError:
    """``err`` with the step it struck at and the checkpoint to resume from."""
    intact = list_checkpoints(output_dir)
    hint = (f"the last intact checkpoint is {intact[-1]}; free some space and resume from it"
            if intact else "no checkpoint of this run was written yet")
    return DiskFullError(f"{err} at step {step}; {hint}", err.path)


class ResumeFromCheckpoint(TrainerCallback):
    """At the start of training: removes files a killed save left, then resumes (see :func:`resume`)."""

    def on_train_begin(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        acc = trainer.accelerator
        if acc.is_main_process:
            for stale in remove_stale_temporaries(trainer.output_dir):
                acc.print(f"removed {stale}, left by a process killed while saving")
        resume(trainer)


class SaveCheckpoints(TrainerCallback):
    """Saves a checkpoint on the steps due for one (``checkpoint_every``, the last, a stop), keeping the newest."""

    def on_train_begin(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        trainer.checkpoint_schedule.saved()  # a time interval counts training time, from here

    def on_step_end(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if control.should_save:
            state.checkpoint = save_checkpoint(trainer, stopping=bool(control.stop_signal))
            trainer.checkpoint_schedule.saved()
            trainer.callbacks.call("on_save", trainer, state, control, checkpoint=state.checkpoint)
