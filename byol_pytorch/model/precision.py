"""Keep convolutions on degenerate feature maps in float32 under autocast.

Small images shrink to 1x1 or 2x1 feature maps in the last stages of a CNN
(a ResNet at 16 px sees 1x1 in ``layer4``). There a strided convolution's
window lies mostly on padding, and on CPUs with AVX512-BF16, torch's bf16
convolution backward (oneDNN) returns garbage weight gradients for such
shapes: NaN, or values around 1e30, on the padded taps, different from run to
run, while the loss stays finite. Measured with torch 2.14.1: a
``Conv2d(256, 512, 3, stride=2, padding=1)`` on a ``(32, 256, 1, 1)`` input
is wrong in 4 of 5 seeds; the same layer on 2x2 or larger maps, or with
stride 1, is within bf16 rounding.

:func:`degenerate_convs_in_fp32` intercepts every convolution while it is
active and, for one whose input is smaller than its kernel or its stride in
some spatial dimension, runs it in float32 with autocast off. Such maps are
tiny, so the float32 cost is negligible; every other convolution keeps the
autocast precision. Nothing of the user's network is changed: no hook, no
module swap. The guard holds whatever a future kernel does, and it is
inactive (no overhead) when autocast is off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_CONVOLUTIONS = {F.conv1d, F.conv2d, F.conv3d, torch.conv1d, torch.conv2d, torch.conv3d}


def _as_tuple(value: int | Sequence[int], dims: int) -> tuple[int, ...]:
    return (value,) * dims if isinstance(value, int) else tuple(value)


def is_degenerate_conv(input_shape: Sequence[int], weight_shape: Sequence[int], stride: int | Sequence[int]) -> bool:
    """Whether a convolution's input is smaller than its kernel or stride in a spatial dimension.

    Args:
        input_shape: ``(B, C, *spatial)`` or unbatched ``(C, *spatial)``.
        weight_shape: ``(C_out, C_in / groups, *kernel)``.
        stride: the convolution's stride, an int or one per spatial dimension.

    Returns:
        ``True`` for shapes whose low-precision backward is not trusted.
    """
    kernel = tuple(weight_shape[2:])
    dims = len(kernel)
    spatial = tuple(input_shape[-dims:])
    strides = _as_tuple(stride, dims)
    if all(k == 1 for k in kernel):
        return False
    return any(size < k or size < s for size, k, s in zip(spatial, kernel, strides))


class _DegenerateConvsInFP32(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.found = False  # whether any convolution was sent to float32

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _CONVOLUTIONS:
            x, weight = args[0], args[1] if len(args) > 1 else kwargs["weight"]
            stride = args[3] if len(args) > 3 else kwargs.get("stride", 1)
            if is_degenerate_conv(x.shape, weight.shape, stride):
                self.found = True
                bias = args[2] if len(args) > 2 else kwargs.get("bias")
                rest = args[3:]
                options = {k: v for k, v in kwargs.items() if k not in ("input", "weight", "bias")}
                with torch.autocast(x.device.type, enabled=False):
                    out = func(x.float(), weight.float(), None if bias is None else bias.float(), *rest, **options)
                return out
        return func(*args, **kwargs)


@contextlib.contextmanager
def degenerate_convs_in_fp32(device_type: str, seen: dict[Any, bool] | None = None, key: Any = None) -> Iterator[None]:
    """Runs convolutions on maps smaller than their kernel or stride in float32 (see the module docstring).

    Does nothing unless autocast is enabled for ``device_type`` with a
    lower-precision dtype. The guard sends every torch call of the block
    through Python, so a caller that runs the same network on inputs of the
    same size may pass ``seen``: the first run under ``key`` records whether
    any convolution was degenerate, and later runs of a ``key`` that had none
    skip the guard (a network at 224 px never needs it). While compiling, the
    guard is always on.

    Args:
        device_type: ``"cpu"``, ``"cuda"``, ...: the device the convolutions run on.
        seen: the caller's record, ``key`` -> whether the guard was needed.
        key: what fixes every convolution's input shape, e.g. the input's spatial size.
    """
    if not torch.is_autocast_enabled(device_type) or torch.get_autocast_dtype(device_type) == torch.float32:
        yield
        return
    remember = seen is not None and not torch.compiler.is_compiling()
    if remember and seen.get(key) is False:
        yield
        return
    mode = _DegenerateConvsInFP32()
    with mode:
        yield
    if remember:
        seen[key] = mode.found
