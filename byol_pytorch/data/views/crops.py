"""The geometric part of BYOL's views, drawn in ``DataLoader`` workers from the whole photo.

The paper crops each view from the original image (8-100 % of its area) and
only then resizes it to 224 px. :class:`LoaderCrops` does that on the CPU,
per image and per view, and hands the two crops on as uint8, a quarter of the
bytes of float32; the photometric part (colour, blur, solarize) stays on the
device (``BYOL(views=...)``).

The draws are a pure function of ``(seed, epoch, index)``: the same in any
worker, in any process start method, and after a resume from a checkpoint.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import NamedTuple, TypeVar

import numpy as np
import torch
from PIL import Image

from ...sizes import CropSpec
from ..formats.decode import draft_for, load_upright_rgb8, pil_to_uint8, upright_size

# Attempts at a crop inside the image before falling back to the largest centred one.
_ATTEMPTS = 10
# PIL's two-step resize (see LoaderCrops.render).
REDUCING_GAP = 1.5


class CropBox(NamedTuple):
    """One view's crop in the upright original image's pixels, and whether it is mirrored."""

    top: float
    left: float
    height: float
    width: float
    flip: bool


class CroppedViews(NamedTuple):
    """The two cropped views of one image ``(3, H, W)`` or of a batch ``(B, 3, H, W)``, uint8."""

    view_1: torch.Tensor
    view_2: torch.Tensor


class EncodedViews(NamedTuple):
    """One JPEG as the loader sends it for device decoding: its bytes and the two views' boxes.

    Attributes:
        data: the file's bytes, uint8 ``(N,)``.
        boxes: ``(2, 5)`` float: top, left, height, width, flip of each view,
            in the upright image's pixels.
    """

    data: torch.Tensor
    boxes: torch.Tensor


def boxes_tensor(boxes: Sequence[CropBox]) -> torch.Tensor:
    """The boxes as a ``(len(boxes), 5)`` float tensor."""
    return torch.tensor([[b.top, b.left, b.height, b.width, float(b.flip)] for b in boxes], dtype=torch.float32)


def sample_crop(height: int, width: int, spec: CropSpec, rng: np.random.Generator) -> CropBox:
    """Draws a random resized crop of an ``height x width`` image, and a flip.

    The crop's area is a uniform fraction of the image's in ``spec.scale`` and
    its aspect (width / height) log-uniform in ``spec.ratio``; when ten draws
    do not fit inside the image, the largest centred crop whose aspect is in
    range is taken.

    Args:
        height: the source image's height in pixels.
        width: the source image's width in pixels.
        spec: the crop's ranges.
        rng: the generator to draw from.

    Returns:
        The crop in source pixels.
    """
    area = height * width
    log_low, log_high = math.log(spec.ratio[0]), math.log(spec.ratio[1])
    for _ in range(_ATTEMPTS):
        target = area * rng.uniform(spec.scale[0], spec.scale[1])
        aspect = math.exp(rng.uniform(log_low, log_high))
        crop_w = round(math.sqrt(target * aspect))
        crop_h = round(math.sqrt(target / aspect))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(rng.integers(0, height - crop_h + 1))
            left = int(rng.integers(0, width - crop_w + 1))
            break
    else:
        aspect = min(max(width / height, spec.ratio[0]), spec.ratio[1])
        crop_w, crop_h = (width, round(width / aspect)) if width / height <= aspect else (round(height * aspect), height)
        crop_w, crop_h = min(crop_w, width), min(crop_h, height)
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
    flip = bool(rng.random() < spec.flip_p)
    return CropBox(float(top), float(left), float(crop_h), float(crop_w), flip)


class LoaderCrops:
    """Draws both views' crops and flips in the loader, from the whole decoded image.

    Given to :class:`~byol_pytorch.data.ImageFolderDataset` (``crops=``), it
    makes each item a :class:`CroppedViews` pair of uint8 ``(3, H, W)`` crops.
    Each view has its own draw, per image. JPEGs are decoded at 1/2, 1/4 or 1/8
    of their size when both crops still get at least their output size from
    the smaller image. Crops are resized with PIL's bicubic filter, which
    widens with the reduction (antialiased), after a box-filter reduction by a
    whole factor where the crop is at least 1.5 times the output.

    Args:
        spec: the crop, as :attr:`byol_pytorch.BYOL.crop_spec` gives it.
        seed: base of the draws; item ``index`` of epoch ``epoch`` draws from
            a generator seeded with ``(seed, epoch, index)``.
        encoded_jpegs: hand on RGB and grayscale JPEGs undecoded, with their
            boxes (:class:`EncodedViews`), for
            :func:`~byol_pytorch.data.views.gpu_decode.decode_views` to decode in
            batches on the device; other files are cropped here as usual.
    """

    def __init__(self, spec: CropSpec, seed: int = 0, encoded_jpegs: bool = False) -> None:
        if not isinstance(spec, CropSpec):
            raise TypeError(f"spec must be a CropSpec (BYOL.crop_spec), got {type(spec).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.spec = spec
        self.seed = seed
        self.encoded_jpegs = bool(encoded_jpegs)

    def boxes(self, height: int, width: int, index: int, epoch: int) -> tuple[CropBox, CropBox]:
        """The two views' crops of item ``index`` in ``epoch`` for an upright ``height x width`` image."""
        rng = np.random.default_rng((self.seed, epoch, index))
        return sample_crop(height, width, self.spec, rng), sample_crop(height, width, self.spec, rng)

    def shrink(self, boxes: Sequence[CropBox]) -> float:
        """By how much the whole image may shrink before a crop gets fewer pixels than its output."""
        out_h, out_w = self.spec.size
        return min(min(box.height / out_h, box.width / out_w) for box in boxes)

    def render(self, image: Image.Image, box: CropBox, original_size: tuple[int, int]) -> torch.Tensor:
        """Cuts ``box`` (in pixels of the ``(height, width)`` original) from ``image``, resizes and flips it.

        ``image`` may be decoded smaller than the original (a JPEG draft); each
        axis is scaled on its own, since the decoder rounds each side up.
        """
        out_h, out_w = self.spec.size
        scale_y, scale_x = image.height / original_size[0], image.width / original_size[1]
        region = (box.left * scale_x, box.top * scale_y, min((box.left + box.width) * scale_x, image.width),
                  min((box.top + box.height) * scale_y, image.height))
        # reducing_gap: shrink by a whole factor with a box filter first when the crop is 1.5x the
        # output or more (faster, the pixels barely move: docs/performance.md).
        crop = image.resize((out_w, out_h), Image.Resampling.BICUBIC, box=region, reducing_gap=REDUCING_GAP)
        if box.flip:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return pil_to_uint8(crop)

    def __call__(self, image: Image.Image, index: int, epoch: int, encoded: bytes | None = None
                 ) -> CroppedViews | EncodedViews:
        """The two views of an opened, not yet decoded image.

        Args:
            image: as ``PIL.Image.open`` returns it (the header read, no pixels).
            index: the item's index in the dataset.
            epoch: the current epoch.
            encoded: the file's bytes when ``image`` was opened from memory (a
                shard sample, a Hugging Face row), for ``encoded_jpegs``.

        Returns:
            ``CroppedViews`` of two ``(3, H, W)`` uint8 tensors; with
            ``encoded_jpegs``, an ``EncodedViews`` for a JPEG.
        """
        height, width = upright_size(image)
        boxes = self.boxes(height, width, index, epoch)
        if (self.encoded_jpegs and image.format == "JPEG" and image.mode in ("RGB", "L")
                and (encoded is not None or image.filename)):
            if encoded is None:
                with open(image.filename, "rb") as handle:
                    encoded = handle.read()
            data = torch.frombuffer(bytearray(encoded), dtype=torch.uint8)
            return EncodedViews(data, boxes_tensor(boxes))
        draft_for(image, self.shrink(boxes))
        decoded = load_upright_rgb8(image)
        return CroppedViews(*(self.render(decoded, box, (height, width)) for box in boxes))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, seed={self.seed}, encoded_jpegs={self.encoded_jpegs})"


Cropper = TypeVar("Cropper", bound="CropsInLoader")


class CropsInLoader(ABC):
    """What can hand its items on as both views, cropped in the loader by a :class:`LoaderCrops`.

    :class:`~byol_pytorch.data.ImageFolderDataset`, :class:`~byol_pytorch.data.PhotoDataset`,
    :class:`~byol_pytorch.data.PhotoTransform` and :class:`~byol_pytorch.data.TrainingStream`
    are; the training pipeline asks this and nothing else. In the data layer
    *crops* are what draws (a :class:`LoaderCrops`), *views* what is drawn
    (:class:`CroppedViews`, what ``BYOL(views=...)`` takes).
    """

    @property
    @abstractmethod
    def crops(self) -> LoaderCrops | None:
        """The crops drawn for each item, or ``None``: items are whole images."""

    @abstractmethod
    def with_crops(self: Cropper, crops: LoaderCrops) -> Cropper:
        """A copy whose items are the two views, cropped by ``crops``."""

    def takes_crops(self) -> bool:
        """Whether :meth:`with_crops` can be given crops now (none drawn yet)."""
        return self.crops is None

    @property
    def views(self) -> LoaderCrops | None:
        """:attr:`crops` under the name byol-pytorch 1.0 gave it."""
        return self.crops

    def with_views(self: Cropper, views: LoaderCrops) -> Cropper:
        """:meth:`with_crops` under the name byol-pytorch 1.0 gave it."""
        return self.with_crops(views)


def crops_argument(crops: LoaderCrops | None, views: LoaderCrops | None) -> LoaderCrops | None:
    """The crops a constructor was given as ``crops=`` or, as in byol-pytorch 1.0, ``views=``.

    Raises:
        TypeError: both are given, or the one given is not a :class:`LoaderCrops`.
    """
    if crops is not None and views is not None:
        raise TypeError("pass the loader crops once: crops= (views= is its 1.0 name)")
    crops = crops if crops is not None else views
    if crops is not None and not isinstance(crops, LoaderCrops):
        raise TypeError(f"crops must be a LoaderCrops or None, got {type(crops).__name__}")
    return crops


def collate_views(items: Sequence[CroppedViews | tuple[CroppedViews, int]]) -> CroppedViews:
    """Stacks items of a ``LoaderCrops`` dataset into one :class:`CroppedViews` of ``(B, 3, H, W)`` uint8.

    Labels, when the items carry them, are dropped. Meant as a ``DataLoader``'s ``collate_fn``.
    """
    if len(items) == 0:
        raise ValueError("collate_views got an empty list of items; expected at least one")
    pairs = [item if isinstance(item, CroppedViews) else item[0] for item in items]
    if not all(isinstance(pair, CroppedViews) for pair in pairs):
        raise TypeError("collate_views expects CroppedViews items (ImageFolderDataset(crops=LoaderCrops(...)))")
    return CroppedViews(torch.stack([p.view_1 for p in pairs]), torch.stack([p.view_2 for p in pairs]))
