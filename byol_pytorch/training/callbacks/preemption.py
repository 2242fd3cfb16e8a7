"""Stopping on a signal: every process stops after the same step, which is logged and checkpointed first."""

from __future__ import annotations

import contextlib
from typing import Any

from ...preemption import StopAgreement, StopSignals
from .base import TrainerCallback, TrainerControl, TrainerState


class StopOnSignal(TrainerCallback):
    """Records SIGTERM, SIGINT and SIGUSR1 while training and asks the loop to stop after an agreed step.

    Args:
        enabled: handle the signals (the config's ``handle_signals``); off, they act as usual.

    The loop then logs and checkpoints that step and raises
    :class:`~byol_pytorch.preemption.TrainingStopped` (see :mod:`byol_pytorch.preemption`).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.signals = StopSignals(enabled)
        self._installed: contextlib.ExitStack | None = None
        self._agreement: StopAgreement | None = None

    def on_train_begin(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self._installed = contextlib.ExitStack()
        self._installed.enter_context(self.signals.installed())
        self._agreement = StopAgreement(self.signals, trainer.accelerator.num_processes)
        self._agreement.start()

    def on_step_end(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        assert self._agreement is not None
        signum = self._agreement.poll()
        if signum and state.step < state.max_steps:  # the last step ends the run anyway
            control.stop_signal = signum
            control.should_log = control.should_save = True

    def on_train_end(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        try:
            if self._agreement is not None:
                self._agreement.close()
        finally:
            self._agreement = None
            if self._installed is not None:
                self._installed.close()
                self._installed = None
