"""Dataset items to images: tensors, PIL images, numpy arrays, ``(image, label)`` pairs and dicts.

:func:`to_image_tensor` turns one item into a float32 ``(C, H, W)`` image in
``[0, 1]``; :func:`collate_images` stacks items into a ``(B, C, H, W)`` batch
and names the shapes when they differ.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from .decode import SIXTEEN_BIT_MODES, open_image
from .items import image_of

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
    ".gif",
    ".ppm",
    ".pgm",
)

# PIL modes that keep their channel layout; everything else becomes RGB.
_KEPT_PIL_MODES = ("L", "RGB", "RGBA")

# How many distinct shapes a collate error lists before it stops; a dataset of
# unresized photos can have hundreds and the message must stay readable.
_MAX_SHAPES_IN_MESSAGE = 5


def _warn_if_outside_unit_range(image: torch.Tensor, source: str) -> None:
    """Warns when a float image is not in [0, 1]; it is then probably normalised."""
    if image.numel() == 0:
        return
    low, high = torch.aminmax(image)
    # A little slack: resampling and colour conversion can overshoot by rounding.
    if low.item() < -1e-3 or high.item() > 1 + 1e-3:
        warnings.warn(
            f"{source} has values in [{low.item():.3g}, {high.item():.3g}], expected "
            f"[0, 1]; it is used as is. If it is already normalised or in 0..255, "
            f"augmentations that assume [0, 1] will misbehave",
            stacklevel=3,
        )


def _tensor_to_image(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.ndim == 2:
        tensor = tensor.unsqueeze(0)
    elif tensor.ndim != 3:
        raise ValueError(
            f"an image tensor must have shape (C, H, W) or (H, W), got shape "
            f"{tuple(tensor.shape)}"
        )
    elif tensor.shape[0] not in (1, 3, 4) and tensor.shape[-1] in (1, 3, 4):
        warnings.warn(
            f"image tensor of shape {tuple(tensor.shape)} looks channels-last (H, W, C); "
            f"tensors are read as (C, H, W), so permute it first",
            stacklevel=3,
        )
    if tensor.dtype == torch.uint8:
        return tensor.to(torch.float32) / 255.0
    if tensor.dtype == torch.bool:
        return tensor.to(torch.float32)
    if tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
        _warn_if_outside_unit_range(tensor, "float image tensor")
        return tensor
    raise TypeError(
        f"image tensors must be uint8, bool or floating point, got dtype {tensor.dtype}"
    )


def _numpy_to_image(array: np.ndarray) -> torch.Tensor:
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim != 3:
        raise ValueError(
            f"an image array must have shape (H, W) or (H, W, C), got shape {array.shape}"
        )
    elif array.shape[-1] not in (1, 3, 4) and array.shape[0] in (1, 3, 4):
        warnings.warn(
            f"image array of shape {array.shape} looks channels-first (C, H, W); numpy "
            f"arrays are read as (H, W, C), so transpose it first",
            stacklevel=3,
        )
    if array.dtype == np.uint8:
        scaled = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        scaled = array.astype(np.float32) / 65535.0
    elif array.dtype == np.bool_:
        scaled = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.floating):
        scaled = array.astype(np.float32)
    else:
        raise TypeError(
            f"image arrays must be uint8, uint16, bool or floating point, got dtype "
            f"{array.dtype}"
        )
    # astype always copies, so the tensor never aliases the caller's array.
    image = torch.from_numpy(scaled).permute(2, 0, 1).contiguous()
    if np.issubdtype(array.dtype, np.floating):
        _warn_if_outside_unit_range(image, "float image array")
    return image


def _pil_to_image(image: Image.Image) -> torch.Tensor:
    mode = image.mode
    if mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float32) / 65535.0
        return torch.from_numpy(np.clip(values, 0.0, 1.0)).unsqueeze(0).contiguous()
    if mode == "F":
        image_tensor = torch.from_numpy(np.array(image, dtype=np.float32)).unsqueeze(0)
        _warn_if_outside_unit_range(image_tensor, "float ('F' mode) PIL image")
        return image_tensor
    if mode not in _KEPT_PIL_MODES:
        if mode == "P" and "transparency" in image.info:
            # PIL warns when palette transparency is dropped by a direct RGB
            # conversion; going through RGBA drops it silently and identically.
            image = image.convert("RGBA")
        image = image.convert("RGB")
    return pil_to_tensor(image).to(torch.float32) / 255.0


def to_image_tensor(item: Any, image_key: str | None = "image") -> torch.Tensor:
    """Converts one dataset item to a float32 image tensor.

    Args:
        item: one of

            * a torch tensor of shape ``(C, H, W)`` or ``(H, W)``: floating point
              values are kept as they are, ``uint8`` is divided by 255, ``bool``
              becomes 0/1;
            * a PIL image: modes ``L`` (1 channel), ``RGB`` and ``RGBA`` (4
              channels) keep their channels, 16-bit grayscale (``I;16``, ``I``)
              is divided by 65535 and stays 1 channel, ``F`` is kept as is,
              every other mode (palette, ``LA``, ``CMYK``, ``1``...) becomes RGB;
            * a numpy array of shape ``(H, W)`` or ``(H, W, C)``: ``uint8`` is
              divided by 255, ``uint16`` by 65535, floating point kept as is;
            * a tuple or list whose first element is one of the above, such as
              the ``(image, label)`` pairs of labelled datasets. The rest is
              ignored;
            * a dict (a Hugging Face row, a WebDataset sample) holding one of the
              above, or encoded image bytes, under ``image_key`` or as its only
              image-like value (:func:`~byol_pytorch.data.image_of`).
        image_key: the key of a dict item's image.

    Returns:
        A float32 tensor of shape ``(C, H, W)``, in ``[0, 1]`` for integer
        inputs. Float inputs are not rescaled; a warning is emitted when they
        fall outside ``[0, 1]``.

    Raises:
        TypeError: the item, or its dtype, is not one of the supported kinds.
        ValueError: the item has the wrong number of dimensions.
        NoImageInItemError: a dict item holds no image; the message lists its keys.
    """
    if isinstance(item, Mapping):
        item = open_image(image_of(item, image_key))
        if isinstance(item, Image.Image):
            with item:
                return _pil_to_image(item)
    if isinstance(item, (tuple, list)):
        if len(item) == 0:
            raise ValueError("got an empty tuple/list where an image or (image, label) was expected")
        item = item[0]
        if isinstance(item, (tuple, list)):
            raise TypeError(
                f"expected an image or an (image, label) pair, got a nested "
                f"{type(item).__name__} as the first element"
            )
    if isinstance(item, torch.Tensor):
        return _tensor_to_image(item)
    if isinstance(item, Image.Image):
        return _pil_to_image(item)
    if isinstance(item, np.ndarray):
        return _numpy_to_image(item)
    raise TypeError(
        f"cannot turn an item of type {type(item).__module__}.{type(item).__qualname__} "
        f"into an image; expected a torch.Tensor, PIL.Image.Image, numpy.ndarray or "
        f"an (image, label) tuple or a dict holding one"
    )


def collate_images(items: Sequence[Any], image_key: str | None = "image") -> torch.Tensor:
    """Stacks dataset items into one image batch, dropping any labels.

    Meant as the ``collate_fn`` of a ``DataLoader`` for BYOL training.

    Args:
        items: dataset items, each accepted by :func:`to_image_tensor`.
        image_key: the key of a dict item's image (``functools.partial`` sets it for a loader).

    Returns:
        A float32 tensor of shape ``(B, C, H, W)``.

    Raises:
        ValueError: ``items`` is empty or holds ``None``, or the images do not
            all have the same shape.
    """
    if len(items) == 0:
        raise ValueError("collate_images got an empty list of items; expected at least one")
    missing = sum(item is None for item in items)
    if missing:
        raise ValueError(
            f"collate_images got None for {missing} of {len(items)} items; expected images. "
            f"ImageFolderDataset(on_unreadable='return_none') is for evaluation; train with "
            f"on_unreadable='next', which returns the next readable file"
        )
    images = [to_image_tensor(item, image_key) for item in items]
    shapes = sorted({tuple(image.shape) for image in images})
    if len(shapes) > 1:
        shown = ", ".join(str(shape) for shape in shapes[:_MAX_SHAPES_IN_MESSAGE])
        if len(shapes) > _MAX_SHAPES_IN_MESSAGE:
            shown += f" and {len(shapes) - _MAX_SHAPES_IN_MESSAGE} more"
        raise ValueError(
            f"cannot batch images of different shapes (C, H, W): saw {shown}. The dataset "
            f"must return images of one size; resize them in the dataset (for example "
            f"ImageFolderDataset(root, image_size=...) resizes every image)"
        )
    return torch.stack(images)
