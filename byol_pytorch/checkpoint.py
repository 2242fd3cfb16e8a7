"""Checkpoint files: atomic writes, safe reads (no pickled code), rotation."""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d{8})\.pt$")


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:08d}.pt"


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Calls ``write(handle)`` so that ``path`` is either the old file or the whole new one.

    The data goes to a temporary file in the same folder, is flushed to disk,
    and replaces ``path`` in one rename; a crash at any point leaves the
    previous file untouched and no partial file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


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


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Loads a checkpoint with ``weights_only=True``: tensors and plain containers only.

    Raises:
        ValueError: the file is truncated or corrupt, or holds pickled objects
            (which would run code on load); the message names the file and,
            for a training checkpoint, the previous intact one.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"refusing to load {path}: it holds objects other than tensors and plain containers, "
            f"and loading them would execute pickled code ({str(err).splitlines()[0]})"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        message = f"checkpoint {path} is corrupt or truncated ({str(err).splitlines()[0]})"
        previous = [p for p in list_checkpoints(path.parent) if p.name < path.name]
        if previous:
            message += f"; the previous checkpoint {previous[-1]} can be resumed instead (resume='{previous[-1]}')"
        raise ValueError(message) from err


def prune_checkpoints(folder: str | os.PathLike, keep: int) -> list[Path]:
    """Deletes all but the newest ``keep`` checkpoints; returns what was deleted."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep!r}")
    old = list_checkpoints(folder)[:-keep]
    for path in old:
        path.unlink()
    return old
