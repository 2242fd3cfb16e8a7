"""Stopping a run on request: the signals a scheduler sends, and every process agreeing on the step to stop after.

A cluster stops a job with SIGTERM (SLURM's preemption and time limit,
Kubernetes), warns it with SIGUSR1 (SLURM's ``--signal=USR1@120``), and a
person stops it with Ctrl-C (SIGINT). While :class:`StopSignals` is active, the
first of these only records the request: the step in progress finishes, the
trainer saves a checkpoint of it and raises :class:`TrainingStopped`, whose
exit status is ``128 + signal number`` (143, 130, 138), what a shell reports
for a process ended by that signal. A second signal more than
:data:`REPEAT_WINDOW_S` after the first stops the process at once (its default
action; SIGINT raises ``KeyboardInterrupt``); a repeat within the window is the
same request delivered twice (the terminal and a launcher both forward Ctrl-C).

With several processes a signal may reach only some of them.
:class:`StopAgreement` makes every process stop after the same step without
making the step wait: after step ``k`` each process starts a non-blocking
all-reduce (max) of its request on a CPU (gloo) group and reads the result
after step ``k + 1``, by when it is long done. A request seen at step ``k``
stops every process after step ``k + 1``.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import torch

# The names, not the numbers: SIGUSR1 is POSIX only (Windows has SIGTERM and SIGINT alone), so the
# signals are looked up where they exist and a system without one simply never sends it.
STOP_SIGNAL_NAMES = ("SIGTERM", "SIGINT", "SIGUSR1")


def available_stop_signals() -> tuple[signal.Signals, ...]:
    """The signals of :data:`STOP_SIGNAL_NAMES` this system has (all three on Linux and macOS)."""
    return tuple(getattr(signal, name) for name in STOP_SIGNAL_NAMES if hasattr(signal, name))


STOP_SIGNALS = available_stop_signals()
# Duplicates of one request arrive together; a person's second Ctrl-C comes later.
REPEAT_WINDOW_S = 2.0

__all__ = ["STOP_SIGNALS", "StopAgreement", "StopSignals", "TrainingStopped", "available_stop_signals", "exit_status"]


def exit_status(signum: int) -> int:
    """The exit status of a run stopped by ``signum``: ``128 + signum``, as a shell reports that signal."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class TrainingStopped(SystemExit):
    """Training stopped on a signal after saving a checkpoint of its last step.

    A ``SystemExit``: uncaught, it ends a script quietly with :attr:`code`
    ``128 + signal number`` (SIGTERM 143, SIGINT 130, SIGUSR1 138).

    Attributes:
        signum: the signal that asked to stop (the one any process received).
        step: the optimiser steps done; the checkpoint holds this step.
        checkpoint: the checkpoint written (on the main process; ``None`` on the others).
    """

    def __init__(self, signum: int, step: int, checkpoint: Path | None) -> None:
        super().__init__(exit_status(signum))
        self.signum, self.step, self.checkpoint = int(signum), int(step), checkpoint

    @property
    def signal_name(self) -> str:
        return signal_name(self.signum)

    def __str__(self) -> str:
        where = f"; saved {self.checkpoint}" if self.checkpoint is not None else ""
        return f"stopped by {self.signal_name} after step {self.step}{where}"


class StopSignals:
    """Records SIGTERM, SIGINT and SIGUSR1 (those of them the system has) instead of dying, while
    :meth:`installed` is active.

    Handlers can only be set from the main thread; elsewhere (or with
    ``enabled=False``) nothing is installed and :attr:`requested` stays 0.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.requested = 0  # the first signal's number, 0 before any
        self._first_at = 0.0

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if not self.requested:
            self.requested, self._first_at = signum, now
            return
        if now - self._first_at < REPEAT_WINDOW_S:
            return
        # A second request: stop now, as if no handler were installed.
        signal.signal(signum, signal.SIG_DFL if signum != signal.SIGINT else signal.default_int_handler)
        signal.raise_signal(signum)

    @contextmanager
    def installed(self) -> Iterator[StopSignals]:
        """Installs the handlers; the previous ones come back on exit, whatever happens."""
        if not self.enabled or threading.current_thread() is not threading.main_thread():
            yield self
            return
        signals = available_stop_signals()
        previous = {signum: signal.getsignal(signum) for signum in signals}
        try:
            for signum in signals:
                signal.signal(signum, self._handle)
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


class StopAgreement:
    """Tells every process, after the same optimiser step, whether any process asked to stop.

    Args:
        signals: this process's recorded requests.
        num_processes: processes training together; with one, the request is acted on at once.

    The group is made by :meth:`start` (a collective: every process calls it).
    """

    def __init__(self, signals: StopSignals, num_processes: int) -> None:
        self.signals, self.num_processes = signals, num_processes
        self._group: Any = None
        self._pending: tuple[Any, torch.Tensor] | None = None

    @property
    def _shared(self) -> bool:
        """Whether requests travel between processes (several of them, and signals handled)."""
        return self.num_processes > 1 and self.signals.enabled

    def start(self) -> None:
        """Makes the CPU process group the requests travel on (every process must call it)."""
        if self._shared:
            import torch.distributed as dist

            self._group = dist.new_group(backend="gloo")

    def poll(self) -> int:
        """Called after every optimiser step; the signal number to stop on now, or 0 to go on.

        With several processes the answer concerns the requests made up to the
        previous call, so all processes give the same answer at the same step.
        """
        if not self._shared:
            return self.signals.requested
        import torch.distributed as dist

        agreed = 0
        if self._pending is not None:
            work, value = self._pending
            work.wait()
            agreed = int(value[0])
        value = torch.tensor([self.signals.requested], dtype=torch.int64)
        self._pending = (dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self._group, async_op=True), value)
        return agreed

    def close(self) -> None:
        """Waits for the request in flight, so that no process leaves a collective half done."""
        if self._pending is not None:
            self._pending[0].wait()
            self._pending = None
