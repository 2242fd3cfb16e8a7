"""Runs ``byol-pytorch`` (the command line, unchanged) with one fault injected; for tests/test_faults.py.

The fault is read from the environment variable ``BYOL_FAULT``:

* ``kill-writing:NAME:OCCURRENCE:BYTES``: SIGKILL this process during the
  OCCURRENCE-th atomic write of the file NAME, once BYTES bytes are written
  (``end``: after all of them, before the temporary file is renamed).
* ``kill-rank:RANK:STEP``: the process of that rank SIGKILLs itself when it
  reaches the checkpoint of STEP (before any collective of that checkpoint).
* ``signal:RANK:STEP:SIGNAL:TARGET``: once optimiser step STEP is done, the
  process of that rank sends SIGNAL (``TERM``, ``INT``, ``USR1``) to TARGET:
  ``self``, ``parent`` (the launcher) or ``group`` (its process group, as
  Ctrl-C in a terminal does).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any, BinaryIO, Callable

from byol_pytorch import checkpoint
from byol_pytorch.cli import main
from byol_pytorch.trainer import BYOLTrainer
from byol_pytorch.training.callbacks import checkpoints


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_while_writing(name: str, occurrence: int, at: str) -> None:
    original, seen = checkpoint.atomic_write, {}

    def faulty(path: Any, write: Callable[[BinaryIO], None]) -> Path:
        path = Path(path)
        seen[path.name] = seen.get(path.name, 0) + 1
        if path.name != name or seen[path.name] != occurrence:
            return original(path, write)

        class Killing:
            written = 0

            def __init__(self, handle: BinaryIO) -> None:
                self.handle = handle

            def write(self, data: bytes) -> int:
                count = self.handle.write(data)
                Killing.written += len(data)
                if at != "end" and Killing.written >= int(at):
                    self.handle.flush()
                    die()
                return count

            def flush(self) -> None:
                self.handle.flush()

        def killing_write(handle: BinaryIO) -> None:
            write(Killing(handle))  # type: ignore[arg-type]
            handle.flush()
            die()  # at == "end": all data written, not yet renamed

        return original(path, killing_write)

    checkpoint.atomic_write = faulty


def kill_rank_at_checkpoint(rank: int, step: int) -> None:
    original = checkpoints.save_checkpoint

    def faulty(trainer: BYOLTrainer, *args: Any, **kwargs: Any) -> Any:
        if trainer.accelerator.process_index == rank and trainer.step == step:
            die()
        return original(trainer, *args, **kwargs)

    checkpoints.save_checkpoint = faulty  # what the SaveCheckpoints callback calls


def signal_after_step(rank: int, step: int, name: str, target: str) -> None:
    original = BYOLTrainer._step_end
    signum = getattr(signal, f"SIG{name}")

    def faulty(self: BYOLTrainer, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if self.accelerator.process_index == rank and self.step == step:
            if target == "group":
                os.killpg(os.getpgrp(), signum)
            else:
                os.kill(os.getppid() if target == "parent" else os.getpid(), signum)
        return result

    BYOLTrainer._step_end = faulty  # type: ignore[method-assign]


if __name__ == "__main__":
    kind, *params = os.environ.get("BYOL_FAULT", "none").split(":")
    if kind == "kill-writing":
        kill_while_writing(params[0], int(params[1]), params[2])
    elif kind == "kill-rank":
        kill_rank_at_checkpoint(int(params[0]), int(params[1]))
    elif kind == "signal":
        signal_after_step(int(params[0]), int(params[1]), params[2], params[3])
    elif kind != "none":
        raise SystemExit(f"unknown BYOL_FAULT {kind!r}")
    sys.exit(main(sys.argv[1:]))
