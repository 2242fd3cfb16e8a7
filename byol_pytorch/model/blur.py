"""Gaussian blur of a batch with a standard deviation per image: two grouped 1-D convolutions."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Blur taps below this weight are dropped (see gaussian_blur).
DENORMAL_SAFE = 1e-20


def format_of(x: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a 4-D tensor laid out so (and not also contiguous), else the contiguous format."""
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel: int, blur: torch.Tensor | None = None) -> torch.Tensor:
    """Blurs each image with its own Gaussian: two grouped 1-D convolutions, reflected borders.

    Args:
        x: ``(B, C, H, W)`` floating point.
        sigma: ``(B,)`` standard deviations in pixels, > 0.
        kernel: odd kernel side, smaller than twice each image side.
        blur: ``(B,)`` bool, which images are blurred (default: all); the
            others get a one-tap kernel and come back unchanged.

    Returns:
        A new tensor of the same shape, dtype and memory format.
    """
    batch, channels, height, width = x.shape
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"the blur kernel must be a positive odd int, got {kernel!r}")
    half = kernel // 2
    if half >= min(height, width):
        raise ValueError(f"a blur kernel of {kernel} needs images of at least {half + 1} px a side, "
                         f"got {height}x{width}")
    taps = torch.arange(kernel, device=x.device, dtype=torch.float32) - half
    weights = torch.softmax(-0.5 * (taps / sigma.float().view(-1, 1)) ** 2, dim=1)  # (B, kernel), rows sum to 1
    # Outer taps of a narrow Gaussian fall below float32's normal range; denormal weights made the CPU's
    # convolution up to 7 times slower (sigma 0.7-0.85). Below 1e-20 a tap changes no pixel a float can show.
    weights = weights.masked_fill(weights < DENORMAL_SAFE, 0.0)
    if blur is not None:
        identity = (taps == 0).float().expand_as(weights)
        weights = torch.where(blur.view(-1, 1), weights, identity)
    weights = weights.to(x.dtype).repeat_interleave(channels, 0)  # one kernel per (image, channel) group
    memory_format = format_of(x)
    # Images and channels become the groups of one convolution: one call per axis for the whole batch.
    planes = x.reshape(1, batch * channels, height, width)
    planes = F.conv2d(F.pad(planes, (0, 0, half, half), mode="reflect"), weights.view(-1, 1, kernel, 1),
                      groups=batch * channels)
    planes = F.conv2d(F.pad(planes, (half, half, 0, 0), mode="reflect"), weights.view(-1, 1, 1, kernel),
                      groups=batch * channels)
    return planes.view(batch, channels, height, width).contiguous(memory_format=memory_format)
