"""The library's typed errors: bad options, unusable inputs, and what a training run stops with.

Each carries the value a caller needs to act on it (the option's name, the
file, the image size), so that callers catch the error they mean instead of
every ``ValueError``.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any


class OptionError(ValueError):
    """An option's value is out of range or of the wrong kind.

    The message is ``"<option> <problem>"``; a caller that spells the option
    differently (the command line's ``--batch-size``) puts its own name before
    :attr:`problem`.

    Attributes:
        option: the option's name as the API spells it (``"batch_size"``).
        problem: what is wrong with the value (``"must be a positive integer, got 0"``).
    """

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"{option} {problem}")
        self.option, self.problem = option, problem


class ImageSizeError(ValueError):
    """The network cannot run on images of the requested size (too small for its strides, or a fixed size).

    Attributes:
        image_size: the ``(height, width)`` that failed.
    """

    def __init__(self, message: str, image_size: tuple[int, int]) -> None:
        super().__init__(message)
        self.image_size = image_size


class NoImagesError(ValueError):
    """A folder holds no image file with one of the extensions looked for."""


class NoImageInItemError(ValueError):
    """A dataset item is a dict without an image under the image key, nor a single image-like value.

    Attributes:
        keys: the item's keys, sorted.
    """

    def __init__(self, message: str, keys: list[str]) -> None:
        super().__init__(message)
        self.keys = keys


class MissingClassFolderError(ValueError):
    """Labels were asked of a folder, but some images lie directly in it, outside any class folder.

    Attributes:
        files: the images that have no class folder.
    """

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files


class CheckpointError(ValueError):
    """A checkpoint or weights file is truncated, corrupt, or holds pickled objects.

    Attributes:
        path: the file.
    """

    def __init__(self, message: str, path: str | Path) -> None:
        super().__init__(message)
        self.path = Path(path)


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


def disagreement(first: str, first_value: Any, second: str, second_value: Any) -> ValueError:
    """The error for one option given two ways with different values, naming both."""
    return ValueError(f"{first}={first_value!r} and {second}={second_value!r} disagree; give one of them "
                      "(or the same value in both)")
