"""Opening and decoding one photo to 8-bit RGB, upright, at no more resolution than needed; what fails to.

:func:`open_image` opens what an item holds (a path, encoded bytes, an
undecoded Hugging Face image). Every PIL mode ends as ``RGB`` with 8 bits per
channel: grayscale is repeated, alpha is dropped (not composited), palette and
CMYK are converted, 16-bit grayscale is scaled by 255/65535. A photo that does
not decode raises :class:`UnreadableImageError`; :func:`log_skipped` is the one
line each skipped photo gets, on the logger ``byol_pytorch.data``.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

# One logger for every skipped photo (folders, Hugging Face rows, streams). Logging rather than
# warnings.warn: a warning raised in a DataLoader worker prints a line of torch's source with it,
# and logging with no handler configured writes just the message to stderr (logging.lastResort).
LOG = logging.getLogger("byol_pytorch.data")
# Converting these to RGB would clip values above 255: they are scaled instead.
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")

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
    if mode in SIXTEEN_BIT_MODES:
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


class UnreadableImageError(ValueError):
    """An item's image could not be decoded (corrupt or truncated bytes, a missing file).

    Attributes:
        reason: what the decoder said, on one line.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def unreadable(error: Exception, value: Any = None) -> UnreadableImageError:
    """``error`` as an :class:`UnreadableImageError` whose reason is one line.

    The reason leaves out what the line that reports it already names: the
    path ``value`` (when it is one) and the in-memory file PIL names
    (``<_io.BytesIO object at 0x...>``).
    """
    text = f"{type(error).__name__}: {error}"
    if isinstance(value, (str, os.PathLike)):
        text = text.replace(f" {os.fspath(value)!r}", "")
    reason = " ".join(re.sub(r" ?<_io\.BytesIO object at 0x[0-9a-f]+>", "", text).split())
    return UnreadableImageError(f"cannot decode the image: {reason}", reason)


def log_skipped(name: str, reason: str) -> None:
    """The one line a skipped photo gets: ``skipped unreadable image NAME: REASON``."""
    LOG.warning("skipped unreadable image %s: %s", name, reason)


def open_image(value: Any, paths: bool = False) -> Any:
    """Encoded file bytes or an undecoded Hugging Face image dict (with ``paths``, a path too) as an opened
    PIL image; anything else as is.

    Raises:
        PIL.UnidentifiedImageError: the bytes are not an image file PIL can read.
        FileNotFoundError: the path, or the dict's path, names a missing file.
    """
    if isinstance(value, Mapping):
        if value.get("bytes") is not None:
            value = value["bytes"]
        elif value.get("path"):
            return Image.open(value["path"])
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Image.open(io.BytesIO(bytes(value)))
    if paths and isinstance(value, (str, os.PathLike)):
        return Image.open(value)
    return value


def encoded_bytes(value: Any) -> bytes | None:
    """The encoded file ``value`` holds (bytes, or an undecoded Hugging Face image's), else ``None``."""
    if isinstance(value, Mapping):
        value = value.get("bytes")
    return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else None
