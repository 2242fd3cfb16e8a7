"""Building the learner's pieces: argument checks, the predictor, and the target's deep copy."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from .ema import BufferMode
from .heads import MLPHead, simsiam_predictor

Augment = Callable[[torch.Tensor], torch.Tensor]


def clone_module(module: nn.Module) -> nn.Module:
    """A deep copy of ``module``, also for modules holding non-leaf tensors.

    ``torch.nn.utils.weight_norm`` (the old, hook-based one) keeps the computed
    weight as a plain attribute that autograd built, which ``copy.deepcopy``
    refuses. Such attributes are detached for the copy (the hook recomputes
    them on the next forward) and restored on the original.
    """
    try:
        return copy.deepcopy(module)
    except RuntimeError as first_error:
        patched = [
            (owner, name, value)
            for owner in module.modules()
            for name, value in vars(owner).items()
            if isinstance(value, torch.Tensor) and not value.is_leaf
        ]
        if not patched:
            raise TypeError(
                f"the network cannot be copied to build the target encoder ({first_error}); "
                "use use_momentum=False (SimSiam, no copy) or make the network deep-copyable"
            ) from first_error
        try:
            for owner, name, value in patched:
                owner.__dict__[name] = value.detach()
            return copy.deepcopy(module)
        finally:
            for owner, name, value in patched:
                owner.__dict__[name] = value


def check_arguments(
    net: nn.Module,
    moving_average_decay: float,
    ema_total_steps: int | None,
    ema_buffers: BufferMode,
    sync_batchnorm: bool | None,
    augment_fn: Augment | None,
    augment_fn2: Augment | None,
) -> None:
    """Rejects :class:`BYOL` arguments of the wrong type or out of range, naming the argument."""
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    if not 0.0 <= moving_average_decay <= 1.0:
        raise ValueError(f"moving_average_decay must be in [0, 1], got {moving_average_decay!r}")
    if ema_total_steps is not None and (not isinstance(ema_total_steps, int) or ema_total_steps < 1):
        raise ValueError(f"ema_total_steps must be a positive integer or None, got {ema_total_steps!r}")
    if ema_buffers not in ("average", "copy"):
        raise ValueError(f"ema_buffers must be 'average' or 'copy', got {ema_buffers!r}")
    if sync_batchnorm is not None and not isinstance(sync_batchnorm, bool):
        raise TypeError(f"sync_batchnorm must be None, True or False, got {sync_batchnorm!r}")
    for name, fn in (("augment_fn", augment_fn), ("augment_fn2", augment_fn2)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable on a batch of images, got {type(fn).__name__}")


def build_predictor(projection_size: int, hidden_size: int, use_momentum: bool, sync_batchnorm: bool | None,
                     like: nn.Module) -> nn.Module:
    """BYOL's MLP predictor, or SimSiam's bottleneck one with ``use_momentum=False``, placed as ``like``'s parameters."""
    if use_momentum:
        predictor: nn.Module = MLPHead(projection_size, projection_size, hidden_size, sync_batchnorm)
    else:
        predictor = simsiam_predictor(projection_size, sync_batchnorm=sync_batchnorm)
    reference = next(iter(like.parameters()), None)
    if reference is not None:
        predictor.to(reference.device, reference.dtype)
    return predictor
