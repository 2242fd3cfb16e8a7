"""Image sizes and the geometric part of a view, shared by the model and the data layer.

Nothing here imports kornia or the model: the data layer checks a size and
describes a crop with these without loading the augmentations.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import OptionError

# A size as users give it: an int for a square, or (height, width).
ImageSize = int | tuple[int, int]
# From this shorter side up, crops take the paper's area range (0.08, 1); below, (0.2, 1).
PAPER_CROP_SCALE_MIN_SIDE = 64


def _is_int(value: object) -> bool:
    # numbers.Integral takes numpy's integers too; bool is an int but never a size.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def as_size(image_size: int | Sequence[int], minimum: int = 2, name: str = "image_size") -> tuple[int, int]:
    """``image_size`` as ``(height, width)``: an int for a square, or a pair of ints.

    Args:
        image_size: an int (Python or numpy) or a sequence of two.
        minimum: the smallest side accepted. The augmentations and the
            learner need 2 (the default); a dataset may hold 1-pixel images.
        name: the argument's name in error messages.

    Raises:
        TypeError: ``image_size`` is not an int or a pair of ints.
        ValueError: a side is below ``minimum``.
    """
    if _is_int(image_size):
        size = (int(image_size), int(image_size))  # type: ignore[arg-type]
    elif (
        isinstance(image_size, Sequence)
        and not isinstance(image_size, str)
        and len(image_size) == 2
        and all(_is_int(side) for side in image_size)
    ):
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise TypeError(f"{name} must be an int or (height, width), got {image_size!r} "
                        f"of type {type(image_size).__name__}")
    if min(size) < minimum:
        pixels = "pixel" if minimum == 1 else "pixels"
        raise ValueError(f"{name} must be at least {minimum} {pixels} on each side, got {image_size!r}")
    return size


def default_crop_scale(image_size: int | Sequence[int]) -> tuple[float, float]:
    """The crop area range: the paper's (0.08, 1) from 64 px up, (0.2, 1) below.

    An 8% crop of a 32-px image is a 9-px patch upsampled back; at that size
    most crops no longer contain the object, so small images keep more of it
    (as SimCLR-style CIFAR recipes do).
    """
    return (0.08, 1.0) if min(as_size(image_size)) >= PAPER_CROP_SCALE_MIN_SIDE else (0.2, 1.0)


@dataclass(frozen=True)
class CropSpec:
    """The geometric part of a view: random resized crop, then horizontal flip.

    One description for both places a crop is drawn: on the device by
    :class:`BYOLAugmentation` (from whatever batch it is given) and in
    ``DataLoader`` workers by :class:`byol_pytorch.data.LoaderCrops` (from the
    whole decoded photo).

    Attributes:
        size: output ``(height, width)``.
        scale: range of the crop's area as a fraction of the source image's.
        ratio: range of the crop's width / height.
        flip_p: probability of a horizontal flip.
    """

    size: tuple[int, int]
    scale: tuple[float, float]
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise OptionError("crop_scale", f"must satisfy 0 < low <= high <= 1, got {self.scale!r}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"crop ratio must satisfy 0 < low <= high, got {self.ratio!r}")
        if not 0.0 <= self.flip_p <= 1.0:
            raise ValueError(f"flip_p must be in [0, 1], got {self.flip_p!r}")

    @classmethod
    def paper(cls, image_size: int | Sequence[int], crop_scale: tuple[float, float] | None = None) -> CropSpec:
        """The paper's crop at ``image_size``; ``crop_scale`` defaults to :func:`default_crop_scale`."""
        size = as_size(image_size)
        scale = crop_scale or default_crop_scale(size)
        return cls(size, (float(scale[0]), float(scale[1])))
