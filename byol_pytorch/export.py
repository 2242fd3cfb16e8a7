"""The trained network on disk: ``net.pt`` and ``net.safetensors``, written together, read either way.

``net.pt`` is a plain ``state_dict`` for ``torch.load``; ``net.safetensors``
holds the same tensors in the format the Hugging Face ecosystem (timm,
transformers, ``safetensors.torch.load_file``) loads without unpickling.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .checkpoint import atomic_save, atomic_write, safe_load
from .errors import CheckpointError

NETWORK_FILES = ("net.pt", "net.safetensors")


def plain_tensors(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Detached contiguous CPU copies of the tensors of ``state``, sharing no memory with each other.

    safetensors refuses tensors that alias one another (tied weights) and
    views with gaps (channels-last, transposed); a copy of each is neither.
    Entries that are not tensors (a module's extra state) cannot be stored
    and are left out with a warning.
    """
    tensors, skipped = {}, []
    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            tensors[name] = value.detach().cpu().clone(memory_format=torch.contiguous_format)
        else:
            skipped.append(name)
    if skipped:
        warnings.warn(f"{', '.join(skipped)} are not tensors and are left out of the safetensors file",
                      stacklevel=2)
    return tensors


def save_safetensors(state: Mapping[str, Any], path: str | os.PathLike[str],
                     metadata: Mapping[str, str] | None = None) -> Path:
    """Writes the tensors of ``state`` to ``path`` in the safetensors format, atomically.

    Args:
        state: names to tensors (other entries are left out with a warning).
        path: the file to write.
        metadata: strings for the file's header, besides ``format: pt``.
    """
    from safetensors.torch import save

    data = save(plain_tensors(state), metadata={"format": "pt", **(metadata or {})})
    return atomic_write(path, lambda handle: handle.write(data))


def save_network(state: Mapping[str, Any], folder: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Writes ``folder/net.pt`` and ``folder/net.safetensors``, each atomically; returns both paths.

    Args:
        state: a network's ``state_dict()``.
        folder: the run folder (created if missing).
    """
    folder = Path(folder)
    pt = atomic_save({k: v.detach().cpu().contiguous() if isinstance(v, torch.Tensor) else v
                      for k, v in state.items()}, folder / "net.pt")
    return pt, save_safetensors(state, folder / "net.safetensors")


def load_network_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A network's ``state_dict`` from a ``.safetensors`` file or a ``torch.save`` file (``weights_only``).

    Raises:
        CheckpointError: the file is corrupt, or holds pickled objects (see :func:`safe_load`).
    """
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path} is not a readable safetensors file ({err})", path) from err
    return safe_load(path)


def run_files(path: Path) -> tuple[Path, Path]:
    """The run folder and the weights file of ``path`` (a run folder, its ``net.pt`` or ``net.safetensors``).

    Raises:
        FileNotFoundError: no such path, or the folder lacks ``run.json`` or the weights.
    """
    if not path.exists():
        raise FileNotFoundError(f"no such run folder or file: {path}; pass a folder written by 'byol-pytorch train'")
    run_dir = path.parent if path.is_file() else path
    weights = path if path.is_file() else next(
        (run_dir / name for name in NETWORK_FILES if (run_dir / name).is_file()), run_dir / "net.pt")
    missing = [p.name for p in (run_dir / "run.json", weights) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{run_dir}: {' and '.join(missing)} missing; a run folder has them from its first "
                                "checkpoint on")
    return run_dir, weights
