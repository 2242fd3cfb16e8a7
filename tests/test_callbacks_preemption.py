"""StopOnSignal: handlers only while training; a signal makes the step one to log, save and stop after."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

from byol_pytorch.training.callbacks.base import TrainerControl, TrainerState
from byol_pytorch.training.callbacks.preemption import StopOnSignal

from .conftest import OneProcessAccelerator


def test_a_signal_while_training_stops_after_the_step_unless_it_was_the_last() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    stop, trainer = StopOnSignal(), SimpleNamespace(accelerator=OneProcessAccelerator())
    stop.on_train_begin(trainer, TrainerState(max_steps=5), TrainerControl())
    try:
        assert signal.getsignal(signal.SIGUSR1) != before
        control = TrainerControl()
        stop.on_step_end(trainer, TrainerState(max_steps=5, step=1), control)
        assert control.stop_signal == 0 and not control.should_save
        os.kill(os.getpid(), signal.SIGUSR1)  # recorded, not acted on
        last = TrainerControl()
        stop.on_step_end(trainer, TrainerState(max_steps=5, step=5), last)
        assert last.stop_signal == 0  # the run ends at this step anyway
        stop.on_step_end(trainer, TrainerState(max_steps=5, step=2), control)
        assert (control.stop_signal, control.should_log, control.should_save) == (signal.SIGUSR1, True, True)
    finally:
        stop.on_train_end(trainer, TrainerState(max_steps=5), TrainerControl())
    assert signal.getsignal(signal.SIGUSR1) == before


def test_disabled_it_installs_nothing() -> None:
    before = signal.getsignal(signal.SIGTERM)
    stop, trainer = StopOnSignal(enabled=False), SimpleNamespace(accelerator=OneProcessAccelerator())
    stop.on_train_begin(trainer, TrainerState(max_steps=5), TrainerControl())
    assert signal.getsignal(signal.SIGTERM) == before
    stop.on_train_end(trainer, TrainerState(max_steps=5), TrainerControl())
