"""The errors a training run stops with: each names what went wrong and what was kept."""

from __future__ import annotations

import errno
from pathlib import Path


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped before saving it."""


class NonFiniteStateError(RuntimeError):
    """A weight, buffer or optimiser state became NaN or infinite; nothing was saved from that step.

    Attributes:
        tensor: the name of the first non-finite tensor (``learner.<name>`` or ``optimizer.<name>``).
        step: the optimiser step at which it was found.
    """

    def __init__(self, message: str, tensor: str, step: int) -> None:
        super().__init__(message)
        self.tensor, self.step = tensor, step


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` says the device ran out of space (or quota)."""
    return isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS


class DiskFullError(OSError):
    """The disk filled up while a file was written; the file under its final name is intact or absent.

    Attributes:
        path: the file that could not be written.
    """

    def __init__(self, message: str, path: str | Path) -> None:
        super().__init__(errno.ENOSPC, message)
        self.path = Path(path)

    @classmethod
    def writing(cls, path: str | Path) -> DiskFullError:
        """The error for a write of ``path`` that found the disk full."""
        return cls(f"the disk is full: no space left on the device to write {path}", path)

    def __str__(self) -> str:
        return str(self.strerror)
