"""BYOL's two augmentation pipelines, run on the input's device with per-image draws.

The views follow Grill et al. (2020), table 6: both views share random resized
crop, flip, colour jitter and grayscale; view 1 is always blurred and never
solarized, view 2 is rarely blurred and sometimes solarized. Every operation
is drawn for each image of the batch separately: kornia draws and applies the
crop and flip, :class:`~byol_pytorch.model.photometric.PhotometricAugmentation`
the colour part (plain torch: kornia's per-call orchestration made the colour
part of a view slower than a loop over the images).
"""

from __future__ import annotations

from collections.abc import Sequence

import kornia.augmentation as K
import torch
from torch import nn

from ..sizes import CropSpec, as_size, default_crop_scale  # noqa: F401 - default_crop_scale: re-exported
from .photometric import BLUR_SIGMA, PhotometricAugmentation

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# For images that are not RGB: the average of ImageNet's channel statistics.
GRAY_MEAN, GRAY_STD = 0.449, 0.226


def blur_kernel_size(image_size: int | Sequence[int]) -> int:
    """An odd Gaussian kernel about 10% of the shorter side (23 at 224 px), at least 3."""
    side = min(as_size(image_size))
    kernel = max(3, round(side / 10))
    return kernel if kernel % 2 == 1 else kernel + 1


def random_gaussian_blur(image_size: int | Sequence[int], p: float, kernel: int | None = None) -> nn.Module:
    """The paper's random Gaussian blur, drawn per image: sigma in :data:`BLUR_SIGMA`.

    Args:
        image_size: side of the images it blurs, int or ``(height, width)``.
        p: probability that an image is blurred.
        kernel: kernel side; defaults to :func:`blur_kernel_size` of ``image_size``.
    """
    kernel = kernel or blur_kernel_size(image_size)
    return K.RandomGaussianBlur((kernel, kernel), sigma=BLUR_SIGMA, p=p)


class Normalize(nn.Module):
    """Channel-wise ``(x - mean) / std`` that adapts to the number of channels.

    With no ``mean``/``std`` given: ImageNet's statistics for 3 channels, and
    ``0.449 / 0.226`` (their average) for every channel otherwise.
    """

    def __init__(self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> None:
        super().__init__()
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        if std is not None and any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)!r}")
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalises ``(B, C, H, W)`` images."""
        channels = x.shape[1]
        if self.mean is not None:
            mean, std = self.mean, self.std
            if len(mean) != channels:
                raise ValueError(f"Normalize has {len(mean)} channel means but the images have {channels} channels")
        elif channels == 3:
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        else:
            mean, std = (GRAY_MEAN,) * channels, (GRAY_STD,) * channels
        mean_t = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std_t = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean_t) / std_t


class BYOLAugmentation(nn.Module):
    """One of BYOL's two views, as a module on ``(B, C, H, W)`` float images in [0, 1].

    The colour part is :class:`PhotometricAugmentation` (``self.colour``).
    Colour jitter and grayscale need RGB: on 4-channel images they act on the
    first three channels and leave the fourth; on 1-channel images they are
    skipped. Output values are clipped to [0, 1]; normalisation is separate
    (:class:`Normalize`).

    Args:
        image_size: output size, int or ``(height, width)``.
        view: 1 (blur always, no solarize) or 2 (blur p 0.1, solarize p 0.2).
        crop_scale: area range of the random resized crop; defaults to
            :func:`default_crop_scale`.
        blur_kernel: Gaussian kernel size; defaults to :func:`blur_kernel_size`.
    """

    def __init__(
        self,
        image_size: int | Sequence[int],
        view: int = 1,
        crop_scale: tuple[float, float] | None = None,
        blur_kernel: int | None = None,
    ) -> None:
        super().__init__()
        if view not in (1, 2):
            raise ValueError(f"view must be 1 or 2, got {view!r}")
        self.crop = CropSpec.paper(image_size, crop_scale)
        size = self.crop.size
        blur_p, solarize_p = (1.0, 0.0) if view == 1 else (0.1, 0.2)
        self.view = view
        self.geometric = nn.Sequential(
            K.RandomResizedCrop(size, scale=self.crop.scale, ratio=self.crop.ratio, resample="BICUBIC"),
            K.RandomHorizontalFlip(p=self.crop.flip_p),
        )
        self.colour = PhotometricAugmentation(blur_p, solarize_p, blur_kernel or blur_kernel_size(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Draws one view of every image.

        Args:
            x: ``(B, C, H, W)`` float images in [0, 1], any H and W.

        Returns:
            ``(B, C, image_size[0], image_size[1])`` in [0, 1].
        """
        # Bicubic resampling overshoots; clip before the colour operations (which work in the crops' own tensor).
        return self.photometric(self.geometric(x).clamp_(0.0, 1.0), inplace=True)

    def photometric(self, x: torch.Tensor, *, inplace: bool = False) -> torch.Tensor:
        """The view's colour part alone, for views already cropped and flipped (by a loader).

        Args:
            x: ``(B, C, H, W)`` float images in [0, 1].
            inplace: write into ``x`` (a tensor the caller owns).

        Returns:
            The same shape, in [0, 1], each image with its own draws.
        """
        if isinstance(self.colour, PhotometricAugmentation):
            return self.colour(x, inplace=inplace)
        return self.colour(x)  # a module put in its place takes the images alone


def default_augmentations(
    image_size: int | Sequence[int], crop_scale: tuple[float, float] | None = None
) -> tuple[BYOLAugmentation, BYOLAugmentation]:
    """The paper's two pipelines, view 1 and view 2."""
    return (
        BYOLAugmentation(image_size, view=1, crop_scale=crop_scale),
        BYOLAugmentation(image_size, view=2, crop_scale=crop_scale),
    )


def digit_augmentations(image_size: int | Sequence[int]) -> tuple[nn.Module, nn.Module]:
    """Two views for small centred characters such as handwritten digits.

    The paper's pipelines were made for photos: a mirrored 2 or 7 is not a
    digit any more, colour jitter does nothing to gray strokes, and an 8-20%
    crop of an 8x8 scan keeps a fragment of one stroke. Here each view keeps
    most of the character (crop area 80-100%, aspect 0.8-1.25) and moves it a
    little (rotation up to 5 degrees, shift up to 10%); as in the paper, view 1
    is always blurred, view 2 rarely blurred and sometimes solarized.

    The views end in ``[0, 1]`` without normalisation: pass them to
    :class:`BYOL` with ``normalize=True``. On scikit-learn's digits, a
    ResNet-18 trained with these views ends above its random initialisation
    in a few hundred steps where the paper's views stay below it (the
    measured figures are in ``benchmarks/README.md``, "The demo's defaults").

    Args:
        image_size: side of the views, or ``(height, width)``.

    Returns:
        ``(view_1, view_2)``, modules mapping ``(B, C, H, W)`` to ``(B, C, *image_size)``.
    """
    size = as_size(image_size)

    def geometry() -> list[nn.Module]:
        return [K.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.8, 1.25)),
                K.RandomAffine(degrees=5.0, translate=(0.1, 0.1), p=0.8)]

    view_1 = nn.Sequential(*geometry(), random_gaussian_blur(size, p=1.0))
    view_2 = nn.Sequential(*geometry(), random_gaussian_blur(size, p=0.1),
                           K.RandomSolarize(thresholds=0.0, additions=0.0, p=0.2))
    return view_1, view_2
