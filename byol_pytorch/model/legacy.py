"""byol-pytorch 0.9's small module-level helpers, for scripts that import them.

``byol_pytorch.byol_pytorch`` re-exports these beside the real classes. Each
keeps 0.9's meaning; the library itself uses its own pieces (named in each
docstring). Pure PyTorch, like the rest of the model side.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from .ema import EMA
from .heads import MLPHead, SimSiamProjector
from .loss import normalized_mse
from .simplicial import SimplicialEmbedding

T = TypeVar("T")


def exists(value: object) -> bool:
    """``value is not None``."""
    return value is not None


def default(value: T | None, fallback: T) -> T:
    """``value``, or ``fallback`` when it is ``None``."""
    return fallback if value is None else value


def divisible_by(numerator: int, denominator: int) -> bool:
    """Whether ``numerator`` is a multiple of ``denominator``."""
    return numerator % denominator == 0


def l2norm(t: torch.Tensor) -> torch.Tensor:
    """``t`` scaled to unit l2 norm along its last dimension."""
    return F.normalize(t, dim=-1)


def flatten(t: torch.Tensor) -> torch.Tensor:
    """``(B, ...)`` -> ``(B, prod(...))``."""
    return t.reshape(len(t), -1)


def singleton(cache_key: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorates a method so that its first non-``None`` result is kept in ``self.<cache_key>`` and reused."""

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def cached(self: Any, *args: Any, **kwargs: Any) -> Any:
            kept = getattr(self, cache_key)
            if kept is None:
                kept = method(self, *args, **kwargs)
                setattr(self, cache_key, kept)
            return kept

        return cached

    return decorate


def get_module_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter."""
    return next(module.parameters()).device


def set_requires_grad(model: nn.Module, value: bool) -> None:
    """Sets ``requires_grad`` on every parameter of ``model``."""
    model.requires_grad_(value)


def MaybeSyncBatchnorm(is_distributed: bool | None = None) -> type[nn.Module]:
    """``nn.SyncBatchNorm`` when running distributed (``None``: more than one process now), else ``nn.BatchNorm1d``."""
    if is_distributed is None:
        dist = torch.distributed
        is_distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    return nn.SyncBatchNorm if is_distributed else nn.BatchNorm1d


def cosine_loss_fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``2 - 2 cos(x, y)`` per sample (:func:`byol_pytorch.model.loss.normalized_mse`)."""
    return normalized_mse(x, y)


def kl_loss_fn(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``KL(y || x)`` of two batches of distributions, averaged over the batch (values clamped at ``eps``)."""
    return F.kl_div(x.clamp_min(eps).log(), y.clamp_min(eps), reduction="batchmean")


class SEM(SimplicialEmbedding):
    """0.9's name and argument order for :class:`~byol_pytorch.model.simplicial.SimplicialEmbedding`."""

    def __init__(self, dim: int, temperature: float = 0.1, dim_simplex: int = 8) -> None:
        super().__init__(dim, temperature, dim_simplex)

    @property
    def dim_simplex(self) -> int:
        """V, the size of each simplex (0.9's name)."""
        return self.simplex_dim


class RandomApply(nn.Module):
    """Applies ``fn`` to the whole batch with probability ``p`` (one draw per call, from Python's ``random``).

    As in 0.9: every image of a batch gets the same decision. The default views
    here draw per image; this is for ``augment_fn`` pipelines written for 0.9.
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], p: float) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        self.fn, self.p = fn, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) if random.random() < self.p else x


def MLP(dim: int, projection_size: int, hidden_size: int = 4096,
        sync_batchnorm: bool | None = None) -> nn.Module:
    """BYOL's projector/predictor, :class:`~byol_pytorch.model.heads.MLPHead`."""
    return MLPHead(dim, projection_size, hidden_size, sync_batchnorm)


def SimSiamMLP(dim: int, projection_size: int, hidden_size: int = 4096,
               sync_batchnorm: bool | None = None) -> nn.Module:
    """SimSiam's projector, :class:`~byol_pytorch.model.heads.SimSiamProjector`."""
    return SimSiamProjector(dim, projection_size, hidden_size, sync_batchnorm)


@torch.no_grad()
def update_moving_average(ema_updater: EMA, ma_model: nn.Module, current_model: nn.Module) -> None:
    """Moves every parameter of ``ma_model`` towards ``current_model``'s by ``ema_updater.update_average``.

    Parameters only, as in 0.9 (a learner's own update also averages batch-norm statistics).
    """
    pairs: Iterator[tuple[torch.Tensor, torch.Tensor]] = zip(ma_model.parameters(), current_model.parameters())
    for average, current in pairs:
        average.copy_(ema_updater.update_average(average, current))


def cycle(iterable: Iterable[T]) -> Iterator[T]:
    """Goes over ``iterable`` again and again (a DataLoader: a new pass, reshuffled, each time)."""
    while True:
        yield from iterable
