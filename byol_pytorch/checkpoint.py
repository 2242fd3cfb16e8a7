"""Checkpoint files: atomic writes, safe reads (no pickled code), rotation."""

from __future__ import annotations

import os
import pickle
import re
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .config import parse_duration
from .errors import CheckpointError, DiskFullError, is_disk_full

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d{8})\.pt$")
# ``.<name>.tmp-<host>-<pid>``; files of older versions have no host.
TEMPORARY_PATTERN = re.compile(r"^\..+\.tmp-(?:(?P<host>.+)-)?(?P<pid>\d+)$")


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:08d}.pt"


class _RecordingWriter:
    """A file handle that remembers the ``OSError`` its ``write`` raised.

    ``torch.save`` turns a failed write into a C++ ``RuntimeError`` ("unexpected
    pos ...") that no longer says why; the recorded error does.
    """

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.handle.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.handle.flush()


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Calls ``write(handle)`` so that ``path`` is either the old file or the whole new one.

    The data goes to a temporary file in the same folder, is flushed to disk,
    and replaces ``path`` in one rename; a crash at any point leaves the
    previous file untouched and no partial file under the final name. A
    killed writer's temporary file is removed by :func:`remove_stale_temporaries`.

    Raises:
        DiskFullError: the device ran out of space (or quota); the temporary
            file is removed and ``path`` is as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    writer: _RecordingWriter | None = None
    try:
        with open(tmp, "wb") as handle:
            writer = _RecordingWriter(handle)
            write(writer)  # type: ignore[arg-type]
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except Exception as err:
        cause = writer.error if writer is not None and writer.error is not None else err
        if is_disk_full(cause):
            raise DiskFullError.writing(path) from err
        raise
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _process_is_alive(pid: int) -> bool:
    if os.name == "nt":
        # Windows has no signal 0: os.kill would terminate the process. Keep its file (it may be writing).
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Deletes the temporary files of :func:`atomic_write` whose writer process is gone.

    A process killed while saving leaves its temporary file behind (a full
    checkpoint's is hundreds of MB). Only files written on this host are
    judged; a live writer's file is kept.

    Returns:
        The files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host, removed = socket.gethostname(), []
    for path in folder.iterdir():
        match = TEMPORARY_PATTERN.match(path.name)
        if match is None or match["host"] not in (None, host) or _process_is_alive(int(match["pid"])):
            continue
        try:
            path.unlink()
        except FileNotFoundError:  # another process cleaned it first
            continue
        removed.append(path)
    return removed


def first_non_finite(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, or ``None``.

    One fused pass: the max-norm of every tensor in a single ``_foreach_norm``
    call (a NaN propagates, an infinity stays infinite, and finite values
    cannot overflow), then one read back.
    """
    names, tensors = [], []
    for name, tensor in named_tensors:
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and tensor.numel():
            names.append(name)
            tensors.append(tensor.detach())
    if not tensors:
        return None
    norms = torch._foreach_norm(tensors, float("inf"))
    finite = torch.stack([n.float().to(tensors[0].device) for n in norms]).isfinite()
    if bool(finite.all()):
        return None
    return names[int((~finite).nonzero()[0])]


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` written atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda handle: torch.save(obj, handle))


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """Full-state checkpoints in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if CHECKPOINT_PATTERN.match(p.name)]
    return sorted(found, key=lambda p: p.name)


def _is_torch_file(path: Path) -> bool:
    """Whether ``path`` starts as ``torch.save`` writes: a zip archive, or (before torch 1.6) a pickle."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _unsupported_global(err: Exception) -> str:
    """The class or function torch refused to unpickle, from its error message ('' if it names none)."""
    match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    return f" ({match[1]})" if match else ""


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Loads a checkpoint with ``weights_only=True``: tensors and plain containers only.

    Raises:
        CheckpointError: the file is not a torch file at all, is truncated or
            corrupt, or holds pickled objects (which would run code on load);
            the message names the file and, for a training checkpoint, the
            previous intact one.
    """
    path = Path(path)
    try:
        if path.is_file() and not _is_torch_file(path):
            raise CheckpointError(f"{path} is not a file written by torch.save (neither a zip archive nor a "
                                  "pickle); pass a checkpoint-*.pt, net.pt or net.safetensors", path)
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err):  # not a refused class: the pickle itself is damaged
            raise CheckpointError(f"checkpoint {path} is corrupt: its pickle does not parse", path) from err
        raise CheckpointError(
            f"refusing to load {path}: it holds Python objects other than tensors and plain containers"
            f"{_unsupported_global(err)}, and loading them would run code stored in the file", path
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        if isinstance(err, CheckpointError):
            raise
        message = f"checkpoint {path} is corrupt or truncated ({str(err).splitlines()[0]})"
        previous = [p for p in list_checkpoints(path.parent) if p.name < path.name]
        if previous:
            message += f"; the previous checkpoint {previous[-1]} can be resumed instead (resume='{previous[-1]}')"
        raise CheckpointError(message, path) from err


def prune_checkpoints(folder: str | os.PathLike, keep: int) -> list[Path]:
    """Deletes all but the newest ``keep`` checkpoints; returns what was deleted."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep!r}")
    old = list_checkpoints(folder)[:-keep]
    for path in old:
        path.unlink()
    return old


class CheckpointSchedule:
    """When the trainer saves: every N optimiser steps, or every so much training time (``checkpoint_every``).

    By time, the clock is read only every ``check_every`` steps (the trainer's
    logging steps), and with several processes ``agree`` makes every process
    follow the main process's clock, so they all save at the same step.

    Args:
        every: a step count, or a duration such as ``"30min"`` (see :func:`~byol_pytorch.config.parse_duration`).
        check_every: steps between readings of the clock.
        clock: seconds, monotonic (a test passes its own).
    """

    def __init__(self, every: int | str, check_every: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.steps = every if isinstance(every, int) else None
        self.seconds = None if isinstance(every, int) else parse_duration(every)
        self.check_every, self.clock = max(1, int(check_every)), clock
        self.last_save = clock()

    def due(self, step: int, agree: Callable[[bool], bool] | None = None) -> bool:
        """Whether to save after optimiser step ``step`` (the caller also saves at the last step and on a stop).

        Args:
            agree: turns this process's verdict into the one all processes
                follow (called, on every process, at the steps the clock is read).
        """
        if self.steps is not None:
            return step % self.steps == 0
        if step % self.check_every:
            return False
        assert self.seconds is not None
        verdict = self.clock() - self.last_save >= self.seconds
        return agree(verdict) if agree is not None else verdict

    def saved(self) -> None:
        """Starts the next interval (called after every save, whatever caused it)."""
        self.last_save = self.clock()
