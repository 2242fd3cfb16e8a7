"""Per-image colour operations on batches of RGB images, in place, in plain torch.

Each function takes per-image parameters as ``(B,)`` or ``(B, k)`` tensors on
the images' device and writes into the images it is given, so that a chain of
them allocates little (on the CPU a fresh tensor of a batch costs more than
the arithmetic) and never reads a value back to the host. The arithmetic
follows torchvision's definitions (ITU-R 601-2 luma, blends clamped to
[0, 1], hue rotated in HSV), so a batch matches a per-image torchvision
loop with the same parameters to float rounding.
"""

from __future__ import annotations

import torch

# ITU-R 601-2 luma weights (the ones torchvision's and PIL's grayscale use).
LUMA = (0.2989, 0.587, 0.114)


def luma(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, 1, H, W)`` luma of ``(B, 3, H, W)`` RGB images, in their dtype (into ``out`` if given)."""
    r, g, b = x.unbind(1)
    gray = torch.mul(r, LUMA[0], out=None if out is None else out.squeeze(1))
    return gray.add_(g, alpha=LUMA[1]).add_(b, alpha=LUMA[2]).unsqueeze(1)


def shift_hue_(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotates every pixel's hue by ``shift`` of a turn in place, keeping its HSV saturation and value.

    Args:
        x: ``(B, 3, H, W)`` RGB in [0, 1], overwritten.
        shift: ``(B,)``, fractions of the colour circle (any sign; hues wrap around).

    Returns:
        ``x``; a shift of 0 gives back its values up to rounding.
    """
    if torch.finfo(x.dtype).bits < 32:
        # The angle needs float32: in bfloat16 its rounding moved colours by up to 5 % of the range.
        return x.copy_(shift_hue_(x.float(), shift))
    r, g, b = x.unbind(1)
    # Only plain arithmetic below: on the CPU a torch.where, a comparison or a remainder costs 10-25 times an
    # add, and the hue used to be most of the colour part's time. Every plane lives in one of six buffers, so
    # that a run of a few images stays in a core's cache (fresh temporaries made the hue 1.2 to 2.5 times slower).
    value, chroma, first, second, hue, other = x.new_empty((6, *r.shape)).unbind(0)
    torch.maximum(torch.maximum(r, g, out=value), b, out=value)
    torch.sub(value, torch.minimum(torch.minimum(r, g, out=chroma), b, out=chroma), out=chroma)
    # Hue in sixths of a turn, from whichever channel is the largest (red first on ties, then green):
    # (g - b) / chroma, 2 + (b - r) / chroma or 4 + (r - g) / chroma, picked with 0/1 signs of value - channel.
    not_red, not_green = torch.sub(value, r, out=first).sign_(), torch.sub(value, g, out=second).sign_()
    green = torch.sub(b, r, out=hue).add_(chroma, alpha=2)
    green_or_blue = green.addcmul_(not_green, torch.sub(r, g, out=other).add_(chroma, alpha=4).sub_(green))
    red = torch.sub(g, b, out=other)
    sixths = red.addcmul_(not_red, green_or_blue.sub_(red))
    # Gray pixels have no hue; any positive divisor does there, as the result scales with their chroma of 0.
    sixths.div_(torch.clamp_min(chroma, torch.finfo(x.dtype).tiny, out=first))
    sixths += shift.view(-1, 1, 1).to(x.dtype) * 6
    sixths -= torch.div(sixths, 6, out=second).floor_().mul_(6)  # into [0, 6)
    # Back to RGB on the piecewise-linear HSV cone: channel n (red 0, green 2, blue 4 sixths) is
    # value - chroma * clamp(d - 1, 0, 1), d its distance round the circle from the opposite hue; written as
    # (value + chroma) - chroma * clamp(d, 1, 2), d = min(|t|, |t - 6|) with t = hue - (n + 3) in [-2, 8).
    offsets = torch.tensor([0.0, -2.0, 2.0], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    # x's values are all in the planes above by now: x and a fresh tensor hold the two halves of the distance.
    t = torch.add(sixths.unsqueeze(1), offsets, out=torch.empty_like(x))
    distance = torch.minimum(torch.abs(t, out=x), t.sub_(6).abs_(), out=x).clamp_(1, 2)
    top = value.add_(chroma).unsqueeze(1)
    return torch.addcmul(top, chroma.unsqueeze(1), distance, value=-1, out=x)


def _blend_slot_(x: torch.Tensor, op: torch.Tensor, factor: torch.Tensor, gray: torch.Tensor) -> None:
    """One of brightness (0), contrast (1), saturation (2) per image, in place: ``factor * x + (1 - factor) * target``.

    The three are blends of the image with a target: black, the image's mean
    luma, the pixel's luma. A factor of exactly 1 leaves the image unchanged.
    ``gray`` is a ``(B, 1, H, W)`` work buffer.
    """
    shape = (-1, 1, 1, 1)
    factor = factor.view(shape).to(x.dtype)
    rest = 1 - factor
    luma(x, out=gray)
    mean = gray.mean((2, 3), keepdim=True)
    # The target times (1 - factor), on one plane: per image, the pixel's luma, its mean, or 0.
    torch.addcmul(mean * rest * (op == 1).view(shape), gray, rest * (op == 2).view(shape), out=gray)
    torch.addcmul(gray, x, factor, out=x).clamp_(0, 1)


def blend_(x: torch.Tensor, op: int, factor: torch.Tensor) -> torch.Tensor:
    """Brightness (``op`` 0), contrast (1) or saturation (2) of ``(B, 3, H, W)`` RGB in place, a factor per image.

    The same operation for every image (see :func:`colour_jitter_` for a
    batch whose images run different ones); brightness reads no luma.
    """
    factor = factor.view(-1, 1, 1, 1).to(x.dtype)
    if op == 0:
        return x.mul_(factor).clamp_(0, 1)
    gray = luma(x)
    # The target times (1 - factor) first, on one plane (or one value), then one pass over the image.
    target = gray.mean((2, 3), keepdim=True).mul_(1 - factor) if op == 1 else gray.mul_(1 - factor)
    return torch.addcmul(target, x, factor, out=x).clamp_(0, 1)


def jitter_in_order_(x: torch.Tensor, factors: torch.Tensor, order: tuple[int, ...]) -> torch.Tensor:
    """Brightness, contrast, saturation and hue of ``(B, 3, H, W)`` RGB in place, in one ``order`` for every image.

    Args:
        x: RGB in [0, 1], overwritten.
        factors: ``(B, 4)`` as in :func:`colour_jitter_`.
        order: the operations, 0-2 brightness, contrast, saturation and 3 the hue shift, in the order they run.

    Returns:
        ``x``, in [0, 1].
    """
    for op in order:
        if op == 3:
            shift_hue_(x, factors[:, 3]).clamp_(0, 1)  # values a rounding outside the range come back in
        else:
            blend_(x, op, factors[:, op])
    return x


def colour_jitter_(
    x: torch.Tensor, factors: torch.Tensor, order: torch.Tensor, hue_slot: torch.Tensor
) -> torch.Tensor:
    """Brightness, contrast, saturation and hue of ``(B, 3, H, W)`` RGB in each image's own order, in place.

    The batch runs three blend slots, one hue shift, and three blend slots
    again; an image takes its ``j``-th blend in slot ``j`` before the hue
    shift if ``j < hue_slot``, after it otherwise, and factor 1 (no change)
    in the other slot. So every image runs each operation once, in its order.

    Args:
        x: ``(B, 3, H, W)`` RGB in [0, 1], overwritten.
        factors: ``(B, 4)``: brightness, contrast, saturation factors (1 for
            no change) and the hue shift in turns (0 for none).
        order: ``(B, 3)`` long, a permutation of brightness (0), contrast (1), saturation (2).
        hue_slot: ``(B,)`` long in ``[0, 3]``, how many of the three run before the hue shift.

    Returns:
        ``x``.
    """
    blends = factors[:, :3].gather(1, order)  # the factor of each image's j-th blend
    ones = torch.ones_like(blends[:, 0])
    gray = x.new_empty((x.shape[0], 1, *x.shape[2:]))
    for slot in range(3):
        _blend_slot_(x, order[:, slot], torch.where(hue_slot > slot, blends[:, slot], ones), gray)
    shift_hue_(x, factors[:, 3])
    for slot in range(3):
        _blend_slot_(x, order[:, slot], torch.where(hue_slot <= slot, blends[:, slot], ones), gray)
    return x
