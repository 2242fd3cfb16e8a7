"""Convolutions on feature maps of one or a few pixels, computed for what they are.

Small images shrink to 1x1 or 2x1 feature maps in the last stages of a CNN
(a ResNet at 16 px sees 1x1 in ``layer3`` and ``layer4``). Two things follow.

**One pixel in, one pixel out.** A 3x3 convolution with padding 1 on a 1x1
map meets the input with its centre tap only: the other eight multiply
padding. Its output is one matrix product with the centre tap's weights, and
the other taps' gradients are exactly zero either way; the convolution
kernels do nine times the arithmetic (ResNet-18 at 16 px: 10 of its 15
million multiply-adds per image). :func:`small_map_convolutions` computes
such a convolution as that product, in any precision; the result equals the
convolution's within float rounding, and the weights are the same tensors.

**Low precision on degenerate maps.** There a strided convolution's window
lies mostly on padding, and on CPUs with AVX512-BF16, torch's bf16
convolution backward (oneDNN) returns garbage weight gradients for such
shapes: NaN, or values around 1e30, on the padded taps, different from run to
run, while the loss stays finite. Measured with torch 2.14.1: a
``Conv2d(256, 512, 3, stride=2, padding=1)`` on a ``(32, 256, 1, 1)`` input
is wrong in 4 of 5 seeds; the same layer on 2x2 or larger maps, or with
stride 1, is within bf16 rounding. Under autocast, a convolution whose input
is smaller than its kernel or its stride in some spatial dimension and that
is not one of the products above runs in float32 with autocast off. Such maps
are tiny, so the float32 cost is negligible; every other convolution keeps
the autocast precision.

Nothing of the user's network is changed: no hook, no module swap; the
interception lasts as long as the context.
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


def single_tap(input_shape: Sequence[int], weight_shape: Sequence[int], stride: Any, padding: Any,
               dilation: Any) -> tuple[int, ...] | None:
    """The one kernel tap that meets a one-pixel input, where the output is one pixel too.

    Args:
        input_shape: ``(B, C, *spatial)`` or unbatched ``(C, *spatial)``.
        weight_shape: ``(C_out, C_in / groups, *kernel)``.
        stride, padding, dilation: the convolution's, ints or one per spatial
            dimension (a string padding is not handled).

    Returns:
        The tap's index per spatial dimension, or ``None`` when the input is
        larger than one pixel, the output is, or several taps (or none) meet it.
    """
    kernel = tuple(weight_shape[2:])
    dims = len(kernel)
    if isinstance(padding, str) or len(input_shape) != dims + 2 or any(s != 1 for s in input_shape[2:]):
        return None
    tap = []
    for k, s, p, d in zip(kernel, _as_tuple(stride, dims), _as_tuple(padding, dims), _as_tuple(dilation, dims)):
        outputs = (1 + 2 * p - d * (k - 1) - 1) // s + 1
        if outputs != 1 or p % d != 0 or not 0 <= p // d < k:
            return None
        tap.append(p // d)
    return None if all(k == 1 for k in kernel) else tuple(tap)


def _argument(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


class _SmallMapConvolutions(TorchFunctionMode):
    def __init__(self, low_precision: bool) -> None:
        super().__init__()
        self.low_precision = low_precision
        self.found = False  # whether any convolution was computed otherwise

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _CONVOLUTIONS:
            x, weight = args[0], _argument(args, kwargs, 1, "weight", None)
            bias = _argument(args, kwargs, 2, "bias", None)
            stride = _argument(args, kwargs, 3, "stride", 1)
            tap = single_tap(x.shape, weight.shape, stride, _argument(args, kwargs, 4, "padding", 0),
                             _argument(args, kwargs, 5, "dilation", 1))
            if tap is not None:
                self.found = True
                centre = weight[(slice(None), slice(None), *(slice(t, t + 1) for t in tap))]
                return func(x, centre, bias, 1, 0, 1, _argument(args, kwargs, 6, "groups", 1))
            if self.low_precision and is_degenerate_conv(x.shape, weight.shape, stride):
                self.found = True
                rest = args[3:]
                options = {k: v for k, v in kwargs.items() if k not in ("input", "weight", "bias")}
                with torch.autocast(x.device.type, enabled=False):
                    return func(x.float(), weight.float(), None if bias is None else bias.float(), *rest, **options)
        return func(*args, **kwargs)


@contextlib.contextmanager
def small_map_convolutions(device_type: str, seen: dict[Any, bool] | None = None, key: Any = None) -> Iterator[None]:
    """Computes convolutions on one-pixel maps as products, and degenerate ones under autocast in float32.

    See the module docstring. The interception sends every torch call of the
    block through Python, so a caller that runs the same network on inputs
    of the same size may pass ``seen``: the first run under ``key`` records
    whether any convolution was computed otherwise, and later runs of a
    ``key`` that had none skip the interception (a network at 224 px never
    needs it). While compiling, it is always on.

    Args:
        device_type: ``"cpu"``, ``"cuda"``, ...: the device the convolutions run on.
        seen: the caller's record, ``key`` -> whether any convolution was computed otherwise.
        key: what fixes every convolution's input shape, e.g. the input's spatial size.
    """
    low_precision = (torch.is_autocast_enabled(device_type)
                     and torch.get_autocast_dtype(device_type) != torch.float32)
    key = (key, low_precision)
    remember = seen is not None and not torch.compiler.is_compiling()
    if remember and seen.get(key) is False:
        yield
        return
    mode = _SmallMapConvolutions(low_precision)
    with mode:
        yield
    if remember:
        seen[key] = mode.found
