"""Optimisers and learning-rate schedules used for BYOL pretraining.

BYOL trains with LARS (You et al., 2017, "Large Batch Training of Convolutional
Networks"), a base learning rate scaled linearly with the batch size, a linear
warm-up and a cosine decay. Biases and normalisation parameters are excluded
from both weight decay and the LARS adaptation. Everything here is plain torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

__all__ = [
    "LARS",
    "build_optimizer",
    "lars_param_groups",
    "optimizer_class",
    "scaled_learning_rate",
    "warmup_cosine",
]

ParamsLike = Iterable[torch.Tensor] | Iterable[dict[str, Any]]


def _check_lars_hyperparameters(
    lr: float, momentum: float, weight_decay: float, trust_coefficient: float, eps: float, nesterov: bool
) -> None:
    if not lr >= 0.0:  # written this way so that NaN is rejected too
        raise ValueError(f"lr must be >= 0, got {lr!r}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    if not weight_decay >= 0.0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if not trust_coefficient > 0.0:
        raise ValueError(f"trust_coefficient must be > 0, got {trust_coefficient!r}")
    if not eps >= 0.0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")
    if nesterov and momentum == 0.0:
        raise ValueError(f"nesterov=True needs momentum > 0, got momentum={momentum!r}")


class LARS(torch.optim.Optimizer):
    """Layer-wise Adaptive Rate Scaling with heavy-ball momentum, as used by BYOL.

    For a parameter ``p`` with gradient ``g`` in a group that is not excluded::

        d     = g + weight_decay * p
        trust = trust_coefficient * ||p|| / (||d|| + eps)   if ||p|| > 0 and ||d|| > 0, else 1
        v     = momentum * v + lr * trust * d
        p     = p - v                                       (nesterov: p - (lr * trust * d + momentum * v))

    The learning rate sits inside the momentum buffer, as in the reference BYOL
    implementation; with a constant learning rate this is identical to
    ``torch.optim.SGD``'s ``v = momentum * v + d; p -= lr * v``.

    A group with ``lars_exclude=True`` (biases and normalisation parameters,
    see :func:`lars_param_groups`) gets neither weight decay nor the trust
    ratio, so it is plain SGD with momentum: ``v = momentum * v + lr * g``.

    Args:
        params: parameters or parameter groups. Groups may set ``lr``,
            ``momentum``, ``weight_decay``, ``trust_coefficient``, ``eps``,
            ``nesterov`` and ``lars_exclude``.
        lr: learning rate, ``>= 0``.
        momentum: momentum factor in ``[0, 1)``.
        weight_decay: L2 penalty added to the gradient, ``>= 0``.
        trust_coefficient: the LARS coefficient eta, ``> 0``.
        eps: added to the update norm in the trust ratio's denominator, ``>= 0``.
        nesterov: use Nesterov momentum (needs ``momentum > 0``).

    Raises:
        ValueError: if a hyperparameter is out of range.
    """

    def __init__(
        self,
        params: ParamsLike,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 1.5e-6,
        trust_coefficient: float = 1e-3,
        eps: float = 1e-8,
        nesterov: bool = False,
    ) -> None:
        _check_lars_hyperparameters(lr, momentum, weight_decay, trust_coefficient, eps, nesterov)
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            trust_coefficient=trust_coefficient,
            eps=eps,
            nesterov=nesterov,
            lars_exclude=False,
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Adds a group, filling in defaults, and checks its hyperparameters.

        Args:
            param_group: a dict with ``"params"`` and optional per-group options.

        Raises:
            ValueError: if one of the group's hyperparameters is out of range.
        """
        super().add_param_group(param_group)
        # Validate after the defaults are filled in so per-group overrides are checked too.
        group = self.param_groups[-1]
        _check_lars_hyperparameters(
            group["lr"],
            group["momentum"],
            group["weight_decay"],
            group["trust_coefficient"],
            group["eps"],
            group["nesterov"],
        )

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Performs one optimisation step.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or ``None`` without a closure.

        Raises:
            RuntimeError: if a gradient is sparse.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            for p in params:
                if p.grad.is_sparse:
                    raise RuntimeError(f"LARS does not support sparse gradients (parameter of shape {tuple(p.shape)})")
            # foreach kernels and one stack of norms need one device and dtype per list.
            for same in _by_device_and_dtype(params).values():
                self._step_group(same, group)
        return loss

    def _step_group(self, params: list[torch.Tensor], group: dict[str, Any]) -> None:
        """One step of parameters on one device and of one dtype, a few foreach kernels for all of them.

        The trust ratios come from one ``_foreach_norm`` per list and a handful
        of elementwise operations on the stacked norms, not from two norms and
        a ``where`` per parameter.
        """
        grads = [p.grad for p in params]
        momentum, nesterov = group["momentum"], group["nesterov"]
        if group["lars_exclude"]:
            updates, scales = grads, group["lr"]
        else:
            weight_decay = group["weight_decay"]
            # Fresh tensors only when decay changes the gradients; p.grad itself is never written.
            updates = torch._foreach_add(grads, params, alpha=weight_decay) if weight_decay != 0.0 else grads
            p_norms = torch.stack(torch._foreach_norm(params))
            u_norms = torch.stack(torch._foreach_norm(updates))
            # torch.where keeps everything on the device (no .item() sync) and avoids 0/0.
            trust = torch.where((p_norms > 0) & (u_norms > 0),
                                group["trust_coefficient"] * p_norms / (u_norms + group["eps"]),
                                torch.ones_like(p_norms))
            scales = list((trust * group["lr"]).unbind(0))
        if momentum == 0.0:
            _foreach_add_scaled_(params, updates, scales, -1.0)
            return
        buffers = []
        for p in params:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            buffers.append(state["momentum_buffer"])
        torch._foreach_mul_(buffers, momentum)
        _foreach_add_scaled_(buffers, updates, scales, 1.0)
        if nesterov:
            _foreach_add_scaled_(params, updates, scales, -1.0)
            torch._foreach_add_(params, buffers, alpha=-momentum)
        else:
            torch._foreach_sub_(params, buffers)


def _by_device_and_dtype(params: list[torch.Tensor]) -> dict[tuple[torch.device, torch.dtype], list[torch.Tensor]]:
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for p in params:
        groups.setdefault((p.device, p.dtype), []).append(p)
    return groups


def _foreach_add_scaled_(
    targets: list[torch.Tensor], tensors: list[torch.Tensor], scales: list[torch.Tensor] | float, sign: float
) -> None:
    """``target += sign * scale * tensor`` for each pair, in place, without temporaries for ``scale * tensor``.

    ``scales`` is one float for all (an excluded group's ``lr``) or a 0-d tensor per pair (``lr * trust``).
    """
    if isinstance(scales, float | int):
        torch._foreach_add_(targets, tensors, alpha=sign * scales)
    else:
        torch._foreach_addcmul_(targets, tensors, scales, value=sign)


def module_parameters(module: nn.Module) -> Iterable[nn.Parameter]:
    """The parameters to optimise: a learner's ``trained_parameters()`` where it has them, else ``parameters()``.

    A :class:`~byol_pytorch.BYOL` holds the user's whole network, but the loss
    trains only the layers up to the hidden one (and the heads).
    """
    trained = getattr(module, "trained_parameters", None)
    return trained() if callable(trained) else module.parameters()


def lars_param_groups(module: nn.Module, weight_decay: float = 1.5e-6) -> list[dict[str, Any]]:
    """Splits a module's trainable parameters into LARS groups the way BYOL does.

    Weights with more than one dimension (convolution and linear kernels) are
    decayed and adapted; one-dimensional (and scalar) parameters, i.e. all
    biases and the affine parameters of BatchNorm/LayerNorm/GroupNorm, get no
    weight decay and ``lars_exclude=True``.

    Args:
        module: the network to optimise.
        weight_decay: decay for the adapted weights, ``>= 0``.

    Returns:
        Up to two groups, in this order: ``{"params", "weight_decay",
        "lars_exclude": False}`` and ``{"params", "weight_decay": 0.0,
        "lars_exclude": True}``. A group that would be empty is omitted.
        Parameters with ``requires_grad=False`` are left out; a parameter shared
        between submodules appears once.

    Raises:
        ValueError: if ``weight_decay`` is negative.
    """
    if not weight_decay >= 0.0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    decayed: list[nn.Parameter] = []
    excluded: list[nn.Parameter] = []
    seen: set[int] = set()
    for p in module_parameters(module):
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decayed if p.ndim > 1 else excluded).append(p)

    groups: list[dict[str, Any]] = []
    if decayed:
        groups.append({"params": decayed, "weight_decay": weight_decay, "lars_exclude": False})
    if excluded:
        groups.append({"params": excluded, "weight_decay": 0.0, "lars_exclude": True})
    return groups


def warmup_cosine(step: int, total_steps: int, warmup_steps: int = 0, final_fraction: float = 0.0) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay.

    During warm-up (``step < warmup_steps``) the multiplier is
    ``(step + 1) / warmup_steps``, so the first step is already non-zero and the
    last warm-up step reaches 1. From ``warmup_steps`` it follows half a cosine
    from 1 down to ``final_fraction`` at ``total_steps`` and stays there after.
    Suitable for ``torch.optim.lr_scheduler.LambdaLR`` via ``functools.partial``.

    Args:
        step: the current step, ``>= 0``.
        total_steps: length of the schedule, ``> 0``.
        warmup_steps: warm-up length, in ``[0, total_steps]``.
        final_fraction: the multiplier at and after ``total_steps``, in ``[0, 1]``.

    Returns:
        The multiplier for the base learning rate.

    Raises:
        ValueError: if an argument is out of range.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps!r}")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps!r}], got {warmup_steps!r}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step!r}")
    if not 0.0 <= final_fraction <= 1.0:
        raise ValueError(f"final_fraction must be in [0, 1], got {final_fraction!r}")

    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= total_steps:
        return float(final_fraction)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))


def scaled_learning_rate(base_lr: float, batch_size: int) -> float:
    """The paper's linear scaling rule: ``base_lr * batch_size / 256``.

    Args:
        base_lr: learning rate for a batch of 256, ``>= 0``.
        batch_size: the actual (global) batch size, ``> 0``.

    Returns:
        The learning rate for ``batch_size``.

    Raises:
        ValueError: if ``base_lr`` is negative or ``batch_size`` is not positive.
    """
    if not base_lr >= 0.0:
        raise ValueError(f"base_lr must be >= 0, got {base_lr!r}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size!r}")
    return base_lr * batch_size / 256


_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "lars": LARS,
}


def optimizer_class(name_or_class: str | type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """The optimiser class of a name (``"adam"``, ``"adamw"``, ``"sgd"``, ``"lars"``) or a class.

    Raises:
        ValueError: if ``name_or_class`` is an unknown name.
        TypeError: if ``name_or_class`` is neither a string nor an Optimizer subclass.
    """
    if isinstance(name_or_class, str):
        key = name_or_class.strip().lower()
        if key not in _OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name_or_class!r}; expected one of {sorted(_OPTIMIZERS)}")
        return _OPTIMIZERS[key]
    if isinstance(name_or_class, type) and issubclass(name_or_class, torch.optim.Optimizer):
        return name_or_class
    raise TypeError(
        f"name_or_class must be an optimizer name or a torch.optim.Optimizer subclass, got {name_or_class!r}"
    )


def build_optimizer(
    params_or_module: nn.Module | ParamsLike,
    name_or_class: str | type[torch.optim.Optimizer],
    lr: float,
    weight_decay: float | None = None,
    device: torch.device | str | None = None,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """Builds an optimiser by name or class.

    With a module, LARS (by name, or ``LARS`` or a subclass) gets
    :func:`lars_param_groups`; any other optimiser gets the parameters that
    require grad. Parameters or groups passed directly are used as they are.
    Adam and AdamW (exactly those classes) get ``fused=True`` when every
    parameter is floating point on CUDA, or every one on the CPU, unless
    ``fused`` or ``foreach`` is given: one kernel for the whole update (on
    the CPU a ResNet-18's Adam step took 6.7 ms of CPU time fused against 48
    for torch's default loop, benchmarks/README.md); elsewhere torch's
    default implementation runs, unchanged.

    Args:
        params_or_module: a module, an iterable of parameters, or parameter groups.
        name_or_class: ``"adam"``, ``"adamw"``, ``"sgd"`` or ``"lars"``
            (case-insensitive), or a ``torch.optim.Optimizer`` subclass.
        lr: learning rate.
        weight_decay: ``None`` keeps the optimiser's own default (0 for Adam and
            SGD, 0.01 for AdamW, 1.5e-6 for LARS).
        device: where the parameters will train, when they are not there yet
            (a trainer that moves the model after building the optimiser);
            ``None`` reads each parameter's own device.
        **kwargs: further options for the optimiser (e.g. ``momentum`` for SGD).

    Returns:
        The optimiser.

    Raises:
        ValueError: if ``name_or_class`` is an unknown name.
        TypeError: if ``name_or_class`` is neither a string nor an Optimizer subclass.
    """
    cls = optimizer_class(name_or_class)
    if weight_decay is not None:
        kwargs["weight_decay"] = weight_decay

    is_lars = issubclass(cls, LARS)
    params: Any
    if isinstance(params_or_module, nn.Module):
        if is_lars:
            decay = 1.5e-6 if weight_decay is None else weight_decay
            params = lars_param_groups(params_or_module, decay)
        else:
            params = [p for p in module_parameters(params_or_module) if p.requires_grad]
    else:
        params = params_or_module
    if cls in (torch.optim.Adam, torch.optim.AdamW) and "fused" not in kwargs and "foreach" not in kwargs:
        # Lists, so that reading the devices does not use up a generator the optimiser still needs.
        params = [{**item, "params": _as_list(item["params"])} if isinstance(item, dict) else item for item in params]
        if _all_fusable(params, device):
            kwargs["fused"] = True  # one kernel for the whole update instead of several per parameter list
    return cls(params, lr=lr, **kwargs)


def _as_list(params: torch.Tensor | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return [params] if isinstance(params, torch.Tensor) else list(params)


def _all_fusable(params: list[Any], device: torch.device | str | None) -> bool:
    """Every parameter is floating point and all are on CUDA, or all on the CPU (or will be: ``device``)."""
    tensors = [t for item in params for t in (item["params"] if isinstance(item, dict) else [item])]
    if isinstance(device, str):
        device = torch.device(device)
    types = {t.device.type for t in tensors} if device is None else {device.type}
    return bool(tensors) and all(t.is_floating_point() for t in tensors) and types in ({"cuda"}, {"cpu"})
