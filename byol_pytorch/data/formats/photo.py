"""A dataset item holding a photo of any size, as an image of one size or as the two training views.

A folder's file, a Hugging Face row, a WebDataset sample or a Parquet row
holds a photo (a path, a PIL image, the encoded file's bytes) of its own size.
:class:`PhotoTransform` is the one place such an item becomes what a batch
needs: the standard evaluation crop at ``image_size`` (float32 in [0, 1]), or
with ``crops`` the two training views' crops drawn from the whole photo
(uint8 :class:`~byol_pytorch.data.CroppedViews`). A photo that does not
decode raises :class:`~byol_pytorch.data.UnreadableImageError`; the datasets
and streams that use the transform skip it.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
from PIL import Image

from ...sizes import ImageSize, as_size
from ..views.crops import CroppedViews, CropsInLoader, EncodedViews, LoaderCrops, crops_argument
from .center_crop import EVAL_RESIZE, resize_and_center_crop
from .decode import encoded_bytes, load_upright_rgb8, open_image, pil_to_uint8, unreadable
from .items import IMAGE_KEY, image_of, label_of
from .tensors import to_image_tensor


class PhotoTransform(CropsInLoader):
    """Turns an item holding a photo into an image of ``image_size``, or the two training views.

    Args:
        image_size: output ``H == W`` as an int, or an ``(h, w)`` pair.
        image_key: the dict key of the image (see :func:`~byol_pytorch.data.image_of`);
            ``None`` for items that are the image (or its path) itself.
        label_key: with a key (or ``"pair"`` for ``(image, label)`` items), the
            transform returns ``(image, label)``.
        crops: crop both training views from the whole photo in the loader
            (uint8 ``CroppedViews``) instead of the evaluation crop.
        resize_ratio: the evaluation crop's resize, relative to ``image_size`` (at least 1).
        views: ``crops`` under its byol-pytorch 1.0 name.

    Raises:
        TypeError: ``crops`` is not a :class:`~byol_pytorch.data.LoaderCrops`.
        ValueError: ``crops`` of another size, or ``resize_ratio`` below 1.
    """

    def __init__(self, image_size: ImageSize, image_key: str | None = IMAGE_KEY, label_key: str | None = None,
                 crops: LoaderCrops | None = None, resize_ratio: float = EVAL_RESIZE, *,
                 views: LoaderCrops | None = None) -> None:
        crops = crops_argument(crops, views)
        self.image_size = as_size(image_size, minimum=1)
        if crops is not None and crops.spec.size != self.image_size:
            raise ValueError(f"the crops are {crops.spec.size} but image_size is {self.image_size}; use one size")
        if not resize_ratio >= 1.0:
            raise ValueError(f"resize_ratio must be at least 1 (the crop lies inside the resized image), "
                             f"got {resize_ratio!r}")
        self.image_key, self.label_key, self._crops = image_key, label_key, crops
        self.resize_ratio = float(resize_ratio)

    @property
    def crops(self) -> LoaderCrops | None:
        """The loader crops drawn, or ``None`` (the evaluation crop)."""
        return self._crops

    def with_crops(self, crops: LoaderCrops | None) -> PhotoTransform:
        """A copy that draws the training views (or, with ``None``, the evaluation crop)."""
        return PhotoTransform(self.image_size, self.image_key, self.label_key, crops, self.resize_ratio)

    def __call__(self, item: Any, index: int = 0, epoch: int = 0) -> Any:
        """The image (or views) of ``item``, with its label when ``label_key`` is set.

        Args:
            item: a dataset item holding a photo.
            index: the item's index; with ``crops``, they are drawn from
                ``(seed, epoch, index)``.
            epoch: the epoch (a stream's pass).

        Returns:
            float32 ``(3, h, w)`` in [0, 1], or ``CroppedViews`` of uint8
            ``(3, h, w)`` with ``crops``; ``(that, label)`` with a ``label_key``.

        Raises:
            UnreadableImageError: the photo does not decode.
        """
        image = self.image(image_of(item, self.image_key), index, epoch)
        if self.label_key is None:
            return image
        return image, label_of(item, None if self.label_key == "pair" else self.label_key)

    def image(self, value: Any, index: int = 0, epoch: int = 0) -> torch.Tensor | CroppedViews | EncodedViews:
        """The image (or views) of a photo as an item holds it: a path, bytes, a PIL image, a tensor, an array.

        Raises:
            UnreadableImageError: the photo does not decode.
        """
        try:
            photo = open_image(value, paths=True)
            # Close what was opened here (a file, bytes); a PIL image of the caller's stays open.
            with photo if photo is not value else contextlib.nullcontext(photo):
                if not isinstance(photo, Image.Image):
                    # Tensors and arrays are already decoded: convert, then crop or resize as a picture would be.
                    photo = _tensor_to_pil(to_image_tensor(photo))
                if self._crops is not None:
                    return self._crops(photo, index, epoch, encoded=encoded_bytes(value))
                # Ask a JPEG decoder for no more than the resized size needs (a no-op for other formats); square,
                # so it still holds if the EXIF rotation swaps the sides.
                side = math.ceil(max(self.image_size) * self.resize_ratio)
                photo.draft(None, (side, side))
                decoded = pil_to_uint8(load_upright_rgb8(photo))
        # PIL reports corrupt data with many exception types (OSError, SyntaxError, struct.error,
        # DecompressionBombError...); a missing file is FileNotFoundError. None may end a run.
        except Exception as error:  # noqa: BLE001
            raise unreadable(error, value) from error
        return resize_and_center_crop(decoded, self.image_size, self.resize_ratio)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(image_size={self.image_size}, image_key={self.image_key!r}, "
                f"label_key={self.label_key!r}, crops={self._crops!r})")


def _tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """A float ``(C, H, W)`` image in [0, 1] as an 8-bit PIL image (1 or 3 channels kept, 4 to RGB)."""
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    if pixels.shape[0] == 4:
        pixels = pixels[:3]
    array = pixels.permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
