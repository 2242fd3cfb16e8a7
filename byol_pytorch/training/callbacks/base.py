"""The callback interface: what the loop tells the pieces beside it, and the state it tells them.

It follows Hugging Face's ``TrainerCallback``: a callback overrides the
events it cares about, each called with the trainer, its :class:`TrainerState`
and its :class:`TrainerControl`, and keyword arguments of the event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EVENTS = ("on_train_begin", "on_batch_end", "on_step_end", "on_log", "on_save", "on_train_end")

__all__ = ["CallbackList", "TrainerCallback", "TrainerControl", "TrainerState"]


@dataclass
class TrainerState:
    """Where the run is; the loop updates it, callbacks read it.

    Attributes:
        step: optimiser steps done.
        start_step: the step this call of the trainer started (or resumed) from.
        max_steps: the steps the run trains for (``num_train_steps``).
        images_seen: images all processes have taken from the data (the place a checkpoint records).
        epoch: the epoch the next batch comes from.
        lr, tau: the learning rate and EMA decay the last step used.
        batch_images: images of the last batch, on this process.
        batch_wait_s: how long the loop waited for the last batch.
        data_wait_s: how long the loop waited for batches in all, on this process.
        log_history: every record logged (``metrics.jsonl``), on every process.
        checkpoint: the newest checkpoint written by this call (main process), else ``None``.
    """

    max_steps: int
    step: int = 0
    start_step: int = 0
    images_seen: int = 0
    epoch: int = 0
    lr: float = 0.0
    tau: float = 0.0
    batch_images: int = 0
    batch_wait_s: float = 0.0
    data_wait_s: float = 0.0
    log_history: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Any = None


@dataclass
class TrainerControl:
    """What the step just taken is due for; the loop sets it before ``on_step_end``, callbacks may add to it.

    Attributes:
        should_log: write a line of figures (every ``log_every`` steps and at the end).
        should_evaluate: run the monitors (every ``knn_every`` steps).
        should_save: write a checkpoint (every ``checkpoint_every`` steps and at the end).
        stop_signal: a signal some process received (0: none); the step is then logged and
            saved, and the loop raises :class:`~byol_pytorch.preemption.TrainingStopped`.
    """

    should_log: bool = False
    should_evaluate: bool = False
    should_save: bool = False
    stop_signal: int = 0


class TrainerCallback:
    """Base class of the callbacks: override the events you need; each does nothing here.

    Every event is called on every process with ``(trainer, state, control)``
    and keyword arguments: ``on_batch_end`` gets ``output`` (the learner's
    :class:`~byol_pytorch.BYOLOutput` for one batch), ``on_log`` gets ``logs``
    (the record), ``on_save`` gets ``checkpoint`` (its path on the main
    process). ``on_train_end`` comes also when training ends by an error or a
    stop signal. A callback with a ``checkpoint_key`` keeps its
    :meth:`state_dict` in the run's checkpoints under that key and gets it
    back through :meth:`load_state_dict` on resume.
    """

    checkpoint_key: str | None = None

    def on_train_begin(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """Training starts (after a resume has put the state back)."""

    def on_batch_end(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """A batch went forward and backward (several per step with gradient accumulation)."""

    def on_step_end(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """An optimiser step, the target's update and the schedules are done; ``state.step`` counts it."""

    def on_log(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """A record was logged (``kwargs["logs"]``)."""

    def on_save(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """A checkpoint was written (``kwargs["checkpoint"]``, ``None`` on processes that write none)."""

    def on_train_end(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """Training ended, however it ended."""

    def state_dict(self) -> dict[str, Any] | None:
        """What the checkpoint keeps of this callback (``None``: nothing)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Takes back what :meth:`state_dict` gave, when a run resumes."""


class CallbackList:
    """Calls each event on the callbacks that override it, in their order."""

    def __init__(self, callbacks: list[TrainerCallback]) -> None:
        for callback in callbacks:
            if not isinstance(callback, TrainerCallback):
                raise TypeError(f"callbacks must be TrainerCallback instances, got {type(callback).__name__}")
        self.callbacks = list(callbacks)
        # Only the overridden methods, so that the per-batch event costs nothing for the others.
        self._handlers = {event: [getattr(cb, event) for cb in callbacks
                                  if getattr(type(cb), event) is not getattr(TrainerCallback, event)]
                          for event in EVENTS}

    def __iter__(self) -> Any:
        return iter(self.callbacks)

    def call(self, event: str, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        for handler in self._handlers[event]:
            handler(trainer, state, control, **kwargs)
