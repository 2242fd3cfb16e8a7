"""BYOL's colour augmentation for a whole batch at once, every image with its own draws.

Colour jitter (brightness, contrast, saturation and hue, applied in an order
drawn for each image), random grayscale, Gaussian blur with a per-image sigma
and solarize (values of 0.5 and above inverted, the paper's threshold). On a
GPU they run as a fixed sequence of batched tensor operations: nothing is read
back to the host, so a CUDA stream never waits on the CPU, and each operation
acts on every image, an image that did not draw it getting the operation's
identity (factor 1, hue shift 0, a one-tap blur kernel; the hue rotation by 0
leaves values unchanged up to float rounding). On the CPU a Python loop goes
over runs of images that drew the same order of the jitter, and each step runs
only on the images that drew it (:meth:`PhotometricAugmentation.apply`).

The factors follow torchvision's ``ColorJitter``: brightness, contrast and
saturation factors uniform in ``[max(0, 1 - s), 1 + s]``, the hue shift uniform
in ``[-h, h]`` (a fraction of the colour circle, wrapping around), and the four
operations in a uniformly drawn order. Luma weights are ITU-R 601-2's, as
torchvision's ``rgb_to_grayscale``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .blur import format_of, gaussian_blur
from .colour import colour_jitter_, jitter_in_order_, luma

# brightness, contrast, saturation strengths and the hue shift bound of the paper's jitter.
PAPER_JITTER = (0.4, 0.4, 0.2, 0.1)
# The paper's range of the blur's standard deviation, in pixels.
BLUR_SIGMA = (0.1, 2.0)
# Images per group on the CPU (see PhotometricAugmentation.apply): a few MiB stay in a core's cache.
CPU_CHUNK_BYTES = 4 << 20
# The run code of images that drew no jitter (jittered ones have 0-255, their order in base 4).
_NO_JITTER = 256
# Columns of the one uniform draw per image (one RNG call per batch keeps seeded runs simple).
_JITTER_ON, _FACTORS, _ORDER_KEYS, _HUE_SLOT, _GRAY, _BLUR_ON, _SIGMA, _SOLARIZE, _COLUMNS = (
    0, slice(1, 5), slice(5, 8), 8, 9, 10, 11, 12, 13)


@dataclass(frozen=True)
class PhotometricDraw:
    """Every random choice of one call, one row per image (all tensors on the images' device).

    Attributes:
        jitter: ``(B,)`` bool, the image is colour-jittered.
        factors: ``(B, 4)`` float32: brightness, contrast and saturation
            factors, then the hue shift (drawn for every image, used where ``jitter``).
        order: ``(B, 3)`` long, the order of brightness (0), contrast (1) and
            saturation (2) among themselves.
        hue_slot: ``(B,)`` long in ``[0, 3]``: the hue shift runs after this
            many of the three others. With ``order``, a uniform choice among
            the 24 orders of the four operations.
        grayscale: ``(B,)`` bool.
        blur: ``(B,)`` bool.
        sigma: ``(B,)`` float32, the blur's standard deviation in pixels.
        solarize: ``(B,)`` bool.
    """

    jitter: torch.Tensor
    factors: torch.Tensor
    order: torch.Tensor
    hue_slot: torch.Tensor
    grayscale: torch.Tensor
    blur: torch.Tensor
    sigma: torch.Tensor
    solarize: torch.Tensor

    def permutation(self) -> torch.Tensor:
        """``(B, 4)`` long: the four operations in the order they run (0-2 as ``order``, 3 the hue)."""
        hue = torch.full_like(self.hue_slot, 3).unsqueeze(1)
        slots = torch.arange(3, device=self.order.device)
        # Position of each of the three others in the full order: shifted by one from the hue's slot on.
        positions = slots + (slots >= self.hue_slot.unsqueeze(1)).long()
        full = torch.empty(self.order.shape[0], 4, dtype=torch.long, device=self.order.device)
        full.scatter_(1, positions, self.order)
        full.scatter_(1, self.hue_slot.unsqueeze(1), hue)
        return full

    def run_codes(self) -> torch.Tensor:
        """``(B,)`` long: the order of the four jitter operations in base 4, or 256 for no jitter.

        Images with the same code run the same operations in the same order.
        """
        full = self.permutation()
        code = full[:, 0] * 64 + full[:, 1] * 16 + full[:, 2] * 4 + full[:, 3]
        return torch.where(self.jitter, code, torch.full_like(code, _NO_JITTER))


def _order_of(code: int) -> tuple[int, ...]:
    """The operations (0-2 brightness, contrast, saturation; 3 hue) of a run code, in their order."""
    return tuple((code >> shift) & 3 for shift in (6, 4, 2, 0))


def _runs(codes: list[int], limit: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each stretch of equal codes in sorted ``codes``, cut to at most ``limit`` each."""
    runs, start = [], 0
    for stop in range(1, len(codes) + 1):
        if stop == len(codes) or codes[stop] != codes[start] or stop - start == limit:
            runs.append((start, stop))
            start = stop
    return runs


def _check_probability(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def _fits_threads(x: torch.Tensor) -> bool:
    """Whether a CPU batch is small enough for the batched way: 64 px x 64 went faster so on 2 threads, 96 px not."""
    return x.numel() * x.element_size() <= torch.get_num_threads() * CPU_CHUNK_BYTES // 2


def _gray_(images: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
    """The images with their RGB made gray, in place (a fourth channel kept)."""
    images[:, :3] = luma(images[:, :3])
    return images


def _in_groups_(x: torch.Tensor, rows: torch.Tensor, limit: int,
                step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Replaces the images ``rows`` of ``x`` by ``step(images, their rows)``, at most ``limit`` at a time.

    ``rows`` in increasing order; where they are every image, the groups are
    slices of ``x`` (nothing copied out and back). ``step`` may work in place.
    """
    every = rows.shape[0] == x.shape[0]
    for index in rows.split(limit) if rows.numel() else ():
        if every:
            images = x[int(index[0]) : int(index[-1]) + 1]
            result = step(images, index)
            if result is not images:
                images.copy_(result)
        else:
            x[index] = step(x[index], index).to(x.dtype)  # under autocast the blur comes back in bfloat16


class PhotometricAugmentation(nn.Module):
    """The colour part of a BYOL view: jitter, grayscale, blur, solarize, each drawn per image.

    Works on ``(B, C, H, W)`` floating-point images in [0, 1] on any device,
    in their dtype (bfloat16 ends within 0.02 of float32, 0.001 on average) and memory
    format. Jitter and grayscale need RGB: with 4 channels they act on the
    first three and keep the fourth; with 1 channel they are skipped. The
    random draws come from torch's global generator of the images' device, or
    from ``generator``.

    Args:
        blur_p: probability that an image is blurred.
        solarize_p: probability that an image is solarized.
        blur_kernel: the blur's odd kernel side.
        jitter: strengths of brightness, contrast, saturation and the hue shift bound (<= 0.5).
        jitter_p: probability that an image is colour-jittered.
        grayscale_p: probability that an image is made gray.
        blur_sigma: range of the blur's standard deviation, in pixels.
    """

    def __init__(
        self,
        blur_p: float,
        solarize_p: float,
        blur_kernel: int,
        jitter: tuple[float, float, float, float] = PAPER_JITTER,
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_sigma: tuple[float, float] = BLUR_SIGMA,
    ) -> None:
        super().__init__()
        self.blur_p = _check_probability("blur_p", blur_p)
        self.solarize_p = _check_probability("solarize_p", solarize_p)
        self.jitter_p = _check_probability("jitter_p", jitter_p)
        self.grayscale_p = _check_probability("grayscale_p", grayscale_p)
        if len(jitter) != 4 or min(jitter) < 0 or jitter[3] > 0.5:
            raise ValueError(f"jitter must be 4 strengths >= 0 (brightness, contrast, saturation, hue <= 0.5), "
                             f"got {jitter!r}")
        if not 0 < blur_sigma[0] <= blur_sigma[1]:
            raise ValueError(f"blur_sigma must satisfy 0 < low <= high, got {blur_sigma!r}")
        if blur_kernel < 1 or blur_kernel % 2 == 0:
            raise ValueError(f"blur_kernel must be a positive odd int, got {blur_kernel!r}")
        self.jitter = tuple(float(s) for s in jitter)
        self.blur_sigma = (float(blur_sigma[0]), float(blur_sigma[1]))
        self.blur_kernel = int(blur_kernel)

    def draw(self, batch: int, device: torch.device | str, generator: torch.Generator | None = None) -> PhotometricDraw:
        """Draws every random choice for ``batch`` images in one uniform draw on ``device``."""
        u = torch.rand(batch, _COLUMNS, device=device, generator=generator)
        brightness, contrast, saturation, hue = self.jitter
        low = u.new_tensor([max(0.0, 1 - brightness), max(0.0, 1 - contrast), max(0.0, 1 - saturation), -hue])
        high = u.new_tensor([1 + brightness, 1 + contrast, 1 + saturation, hue])
        sigma_low, sigma_high = self.blur_sigma
        return PhotometricDraw(
            jitter=u[:, _JITTER_ON] < self.jitter_p,
            factors=low + (high - low) * u[:, _FACTORS],
            order=u[:, _ORDER_KEYS].argsort(dim=1),  # i.i.d. keys: each of the 6 orders equally likely
            hue_slot=(u[:, _HUE_SLOT] * 4).long().clamp_(max=3),
            grayscale=u[:, _GRAY] < self.grayscale_p,
            blur=u[:, _BLUR_ON] < self.blur_p,
            sigma=sigma_low + (sigma_high - sigma_low) * u[:, _SIGMA],
            solarize=u[:, _SOLARIZE] < self.solarize_p,
        )

    def apply(self, x: torch.Tensor, draw: PhotometricDraw, *, batched: bool | None = None,
              inplace: bool = False) -> torch.Tensor:
        """Applies the choices of ``draw`` to ``x`` (``(B, C, H, W)`` in [0, 1]); returns the same shape in [0, 1].

        Two ways give the same result (to float rounding):

        * batched (the default on GPUs): every step acts on the whole batch,
          an image that did not draw it with the step's identity; nothing is
          read back to the host, so the device never waits on it;
        * in runs (the default on the CPU, where reading the draws costs
          nothing, for batches larger than half :data:`CPU_CHUNK_BYTES` per
          thread; smaller ones already sit in the cache, and there the
          batched way's larger calls spread better over the threads): images
          that share their order of the jitter go through together, a few
          MiB at a time (:data:`CPU_CHUNK_BYTES`, so that they stay in a
          core's cache between steps), and each step runs only on the images
          that drew it, so a rarely drawn step (the blur of view 2, p = 0.1)
          costs in proportion (figures: ``docs/performance.md``).

        Args:
            x: the images.
            draw: from :meth:`draw`, for as many images.
            batched: force one way (``None``: by ``x``'s device).
            inplace: write the result into ``x`` (for images the caller owns:
                it saves allocating and faulting in a fresh batch); by default
                ``x`` stays as it was.
        """
        if x.dim() != 4 or not x.is_floating_point():
            raise TypeError(f"expected (B, C, H, W) floating-point images, got shape {tuple(x.shape)} of {x.dtype}")
        if draw.jitter.shape[0] != x.shape[0]:
            raise ValueError(f"the draw is for {draw.jitter.shape[0]} images, the batch holds {x.shape[0]}")
        if batched is None:
            batched = x.device.type != "cpu" or _fits_threads(x)
        out = x if inplace else x.clone(memory_format=format_of(x))
        if batched:
            self._apply_(out, draw)
        else:
            self._apply_in_runs_(out, draw)
        return out

    def _apply_in_runs_(self, x: torch.Tensor, draw: PhotometricDraw) -> None:
        """The CPU's way (see :meth:`apply`), in place.

        The jitter and grayscale run on runs of images that share their order
        of the jitter (gathered, so that they stay in the cache). The blur and
        the solarize then run on the images that drew them, a few at a time,
        whichever run they came from: a blur call on one image took half as
        long again per image as one on six.
        """
        rgb = x.shape[1] in (3, 4)
        codes = draw.run_codes() if rgb and self.jitter_p > 0 else torch.full_like(draw.hue_slot, _NO_JITTER)
        ranked = torch.argsort(codes, stable=True)
        sorted_codes = codes[ranked].tolist()
        jittered = bisect.bisect_left(sorted_codes, _NO_JITTER)
        limit = max(1, CPU_CHUNK_BYTES // max(1, x[0].numel() * x.element_size()))
        gray = rgb and self.grayscale_p > 0
        for start, stop in _runs(sorted_codes[:jittered], limit):
            index = ranked[start:stop]
            images = x.index_select(0, index)
            jitter_in_order_(images[:, :3], draw.factors[index], _order_of(sorted_codes[start]))
            if gray:
                _in_groups_(images, draw.grayscale[index].nonzero().squeeze(1), limit, _gray_)
            x.index_copy_(0, index, images)
        if gray:
            rest = ranked[jittered:]
            _in_groups_(x, rest[draw.grayscale[rest]].sort().values, limit, _gray_)
        if self.blur_p > 0:
            _in_groups_(x, draw.blur.nonzero().squeeze(1), limit,
                        lambda images, index: gaussian_blur(images, draw.sigma[index], self.blur_kernel).clamp_(0, 1))
        if self.solarize_p > 0:
            _in_groups_(x, draw.solarize.nonzero().squeeze(1), limit, lambda images, _: torch.minimum(images, 1 - images))

    def _apply_(self, x: torch.Tensor, draw: PhotometricDraw) -> None:
        # Probabilities of 0 are settings, not draws: skipping their identity passes looks at no data.
        if x.shape[1] in (3, 4):
            rgb = x[:, :3]
            if self.jitter_p > 0:
                # Images that drew no jitter run it with factors that change nothing.
                identity = draw.factors.new_tensor([1.0, 1.0, 1.0, 0.0])
                factors = torch.where(draw.jitter.unsqueeze(1), draw.factors, identity)
                colour_jitter_(rgb, factors, draw.order, draw.hue_slot)
            if self.grayscale_p > 0:
                # rgb * (1 - g) + luma * g: exactly one or the other for g in {0, 1}.
                gray = draw.grayscale.to(x.dtype).view(-1, 1, 1, 1)
                torch.addcmul(luma(rgb).mul_(gray), rgb, 1 - gray, out=rgb)
        if self.blur_p > 0:
            x.copy_(gaussian_blur(x, draw.sigma, self.blur_kernel, draw.blur))
        if self.solarize_p > 0:
            # Solarize at 0.5 is min(x, 1 - x); images that drew none compare with a bound above 1 instead.
            bound = (~draw.solarize).to(x.dtype).mul_(2).view(-1, 1, 1, 1)
            torch.minimum(x, torch.add(bound, 1).sub(x), out=x)
        x.clamp_(0, 1)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, *,
                inplace: bool = False) -> torch.Tensor:
        """Draws for every image of ``x`` and applies the draws.

        Args:
            x: ``(B, C, H, W)`` floating-point images in [0, 1].
            generator: a generator on ``x``'s device; torch's global one by default.
            inplace: write into ``x`` (see :meth:`apply`).

        Returns:
            The same shape, dtype and device, in [0, 1].
        """
        return self.apply(x, self.draw(x.shape[0], x.device, generator), inplace=inplace)

    def extra_repr(self) -> str:
        return (f"jitter={self.jitter}, jitter_p={self.jitter_p}, grayscale_p={self.grayscale_p}, "
                f"blur_p={self.blur_p}, blur_sigma={self.blur_sigma}, blur_kernel={self.blur_kernel}, "
                f"solarize_p={self.solarize_p}")
