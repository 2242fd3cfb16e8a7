"""The exponential moving average that builds BYOL's target network."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import nn

from .defaults import DEFAULT_TAU

BufferMode = Literal["average", "copy"]


def cosine_tau(step: int, total_steps: int, base_tau: float = DEFAULT_TAU) -> float:
    """The paper's EMA decay: ``1 - (1 - base) * (cos(pi k / K) + 1) / 2``.

    It rises from ``base_tau`` at step 0 to 1 at ``total_steps`` and stays at 1 after.

    Args:
        step: the current step k, ``>= 0``.
        total_steps: K, ``> 0``.
        base_tau: the decay at step 0, in ``[0, 1]``.

    Returns:
        tau_k.
    """
    if not 0.0 <= base_tau <= 1.0:
        raise ValueError(f"base_tau must be in [0, 1], got {base_tau!r}")
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps!r}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step!r}")
    progress = min(step, total_steps) / total_steps
    return 1.0 - (1.0 - base_tau) * (math.cos(math.pi * progress) + 1.0) / 2.0


def _split(module: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    params = [p.data for p in module.parameters()]
    buffers = list(module.buffers())
    float_buffers = [b for b in buffers if b.is_floating_point()]
    other_buffers = [b for b in buffers if not b.is_floating_point()]
    return params, float_buffers, other_buffers


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, tau: float, buffers: BufferMode = "average") -> None:
    """Moves ``target`` towards ``online`` in place: ``xi <- tau xi + (1 - tau) theta``.

    One fused ``torch._foreach_lerp_`` over all parameters (no Python loop per
    tensor, no new allocations). Floating-point buffers (batch-norm running
    statistics) are averaged the same way with ``buffers="average"`` or copied
    with ``buffers="copy"``; integer buffers (``num_batches_tracked``) are
    always copied.

    Args:
        target: the target network; same structure as ``online``.
        online: the online network.
        tau: decay in ``[0, 1]``: 1 leaves the target unchanged, 0 copies the online.
        buffers: ``"average"`` or ``"copy"``.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau!r}")
    if buffers not in ("average", "copy"):
        raise ValueError(f"buffers must be 'average' or 'copy', got {buffers!r}")
    t_params, t_float, t_other = _split(target)
    o_params, o_float, o_other = _split(online)
    if len(t_params) != len(o_params) or len(t_float) != len(o_float) or len(t_other) != len(o_other):
        raise ValueError("target and online networks have different structures")
    weight = 1.0 - tau
    if t_params and weight != 0.0:
        torch._foreach_lerp_(t_params, o_params, weight)
    if t_float:
        if buffers == "average":
            if weight != 0.0:
                torch._foreach_lerp_(t_float, o_float, weight)
        else:
            torch._foreach_copy_(t_float, o_float)
    if t_other:
        torch._foreach_copy_(t_other, o_other)


@torch.no_grad()
def copy_weights_(target: nn.Module, online: nn.Module) -> None:
    """Makes ``target`` an exact copy of ``online`` (parameters and buffers), in place."""
    t_params, t_float, t_other = _split(target)
    o_params, o_float, o_other = _split(online)
    torch._foreach_copy_(t_params + t_float + t_other, o_params + o_float + o_other)


class EMA:
    """A decay ``beta`` and byol-pytorch 0.9's ``update_average``, for scripts that use them.

    Args:
        beta: the decay, in ``[0, 1]``.
    """

    def __init__(self, beta: float) -> None:
        self.beta = beta

    def update_average(self, old: torch.Tensor | None, new: torch.Tensor) -> torch.Tensor:
        """``beta * old + (1 - beta) * new``; ``new`` when there is no ``old`` yet."""
        if old is None:
            return new
        return torch.lerp(old, new, 1.0 - self.beta)


class TargetEMAUpdater(EMA):
    """``learner.target_ema_updater``: its ``beta`` is the learner's tau, read and written by hand.

    Reading ``beta`` gives the decay the next ``update_moving_average()`` uses
    (the cosine schedule's value where one is set). Writing it fixes tau from
    the next update on, in place of ``moving_average_decay`` and of the cosine
    schedule, as byol-pytorch 0.9 scripts that schedule tau themselves expect.
    """

    def __init__(self, learner: Any) -> None:  # no beta of its own: the learner's
        self._learner = learner

    @property  # type: ignore[override]
    def beta(self) -> float:
        return self._learner.current_tau

    @beta.setter
    def beta(self, value: float) -> None:
        self._learner.set_tau(value)
