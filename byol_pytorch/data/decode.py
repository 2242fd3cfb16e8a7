"""Decoding one image file to 8-bit RGB, upright, at no more resolution than needed.

Every mode the folder accepts ends as ``RGB`` with 8 bits per channel, as the
float path of :func:`~byol_pytorch.data.images.to_image_tensor` followed by
``ImageFolderDataset``'s RGB conversion would have it: grayscale is repeated,
alpha is dropped (not composited), palette and CMYK are converted, 16-bit
grayscale is scaled by 255/65535.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageOps

from .images import _SIXTEEN_BIT_PIL_MODES

# EXIF orientations that turn the stored image by 90 or 270 degrees (its sides swap).
_SIDEWAYS_ORIENTATIONS = (5, 6, 7, 8)
_ORIENTATION_TAG = 0x0112
# PIL's JPEG draft can only shrink by these factors (in the DCT domain, almost free).
_DRAFT_FACTORS = (8, 4, 2)


def upright_size(image: Image.Image) -> tuple[int, int]:
    """``(height, width)`` of ``image`` once its EXIF rotation is applied, from the header alone."""
    width, height = image.size
    try:
        orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - bad EXIF must not cost a good image
        orientation = 1
    return (width, height) if orientation in _SIDEWAYS_ORIENTATIONS else (height, width)


def draft_for(image: Image.Image, shrink: float) -> None:
    """Asks a JPEG decoder to shrink by the largest power of two up to ``shrink`` (no-op for other formats).

    Args:
        image: an opened, not yet loaded image.
        shrink: by how much the whole image may shrink and still give every
            crop at least its output size.
    """
    if image.format != "JPEG":
        return
    factor = next((f for f in _DRAFT_FACTORS if f <= shrink), 1)
    if factor > 1:
        width, height = image.size
        # draft picks the largest reduction that keeps at least this size.
        image.draft(None, (math.ceil(width / factor), math.ceil(height / factor)))


def to_rgb8(image: Image.Image) -> Image.Image:
    """``image`` (any mode) as an 8-bit ``RGB`` PIL image."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_PIL_MODES:
        values = np.clip(np.asarray(image, dtype=np.float64) * (255.0 / 65535.0), 0.0, 255.0)
        return Image.fromarray(np.rint(values).astype(np.uint8), mode="L").convert("RGB")
    if mode == "F":
        values = np.clip(np.asarray(image, dtype=np.float64) * 255.0, 0.0, 255.0)
        return Image.fromarray(np.rint(values).astype(np.uint8), mode="L").convert("RGB")
    if mode == "RGB":
        return image
    if mode == "P" and "transparency" in image.info:
        # PIL warns when palette transparency is dropped by a direct conversion.
        image = image.convert("RGBA")
    return image.convert("RGB")


def load_upright_rgb8(image: Image.Image) -> Image.Image:
    """Decodes an opened image, applies its EXIF rotation and converts it to 8-bit RGB."""
    image.load()
    try:
        # In place, so unrotated images are not copied.
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:  # noqa: BLE001, S110 - bad EXIF must not cost a good image
        pass
    return to_rgb8(image)


def pil_to_uint8(image: Image.Image) -> torch.Tensor:
    """An 8-bit RGB PIL image as a ``(3, H, W)`` uint8 tensor (one copy)."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()
