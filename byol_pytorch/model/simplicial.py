"""Simplicial embeddings (Lavoie et al. 2022, arXiv 2204.00616), an option in front of the projector.

The representation is mapped linearly (with batch norm) to ``L * V`` features,
which are read as ``L`` groups of ``V`` and each group is turned into a point
on the ``V``-simplex by a softmax at temperature ``tau``. The projector then
works on those ``L`` soft one-hot codes. byol-pytorch 0.9 had this on by
default; here it is off (the BYOL paper has no such layer).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .heads import head_batch_norm

SEM_DEFAULTS = {"sem_num_simplices": 32, "sem_simplex_dim": 8, "sem_temperature": 0.1}


class SimplicialEmbedding(nn.Module):
    """Softmax over each consecutive group of ``simplex_dim`` features, at ``temperature``.

    Args:
        dim: features in and out; a multiple of ``simplex_dim``.
        temperature: the softmax temperature (lower: codes closer to one-hot).
        simplex_dim: V, the size of each group.

    Shape:
        ``(..., dim)`` -> ``(..., dim)``; every group of V sums to 1.
    """

    def __init__(self, dim: int, temperature: float = 0.1, simplex_dim: int = 8) -> None:
        super().__init__()
        if not isinstance(simplex_dim, int) or simplex_dim < 1:
            raise ValueError(f"sem_simplex_dim must be a positive integer, got {simplex_dim!r}")
        if dim % simplex_dim:
            raise ValueError(f"the simplicial embedding's width {dim} is not a multiple of sem_simplex_dim "
                             f"{simplex_dim}")
        if not temperature > 0:
            raise ValueError(f"sem_temperature must be > 0, got {temperature!r}")
        self.dim, self.simplex_dim, self.temperature = dim, simplex_dim, float(temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = x.unflatten(-1, (-1, self.simplex_dim))
        return torch.softmax(groups / self.temperature, dim=-1).flatten(-2)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, simplex_dim={self.simplex_dim}, temperature={self.temperature}"


def simplicial_projector(input_dim: int, projector_of: Callable[[int], nn.Module], num_simplices: int,
                         simplex_dim: int, temperature: float, sync_batchnorm: bool | None) -> nn.Sequential:
    """``Sequential(Sequential(Linear, BatchNorm1d), SimplicialEmbedding, projector)``.

    The layout (and so the ``state_dict`` keys ``0.0.*``, ``0.1.*``, ``2.*``) is
    byol-pytorch 0.9's, so its checkpoints load.

    Args:
        input_dim: the representation's width D.
        projector_of: called with the embedding's width ``L * V``; returns the projector.
        num_simplices: L.
        simplex_dim: V.
        temperature: the softmax temperature.
        sync_batchnorm: the batch norm's policy across processes (see :func:`head_batch_norm`).
    """
    if not isinstance(num_simplices, int) or num_simplices < 1:
        raise ValueError(f"sem_num_simplices must be a positive integer, got {num_simplices!r}")
    width = num_simplices * simplex_dim
    embed = nn.Sequential(nn.Linear(input_dim, width), head_batch_norm(width, sync_batchnorm))
    return nn.Sequential(embed, SimplicialEmbedding(width, temperature, simplex_dim), projector_of(width))
