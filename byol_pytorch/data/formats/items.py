"""Where a dataset item's image and label are: dicts (Hugging Face rows, WebDataset samples), pairs, bare images.

A Hugging Face ``datasets.Dataset`` row is ``{"image": PIL.Image, "label": 3}``;
a WebDataset sample is ``{"__key__": "000017", "jpg": b"...", "cls": b"3"}``;
a torchvision dataset gives ``(image, label)``. :func:`image_of` finds the
image in each, :func:`check_first_item` reads the first item of a dataset or
stream before anything is written, so a dataset that yields no image is refused
with the keys or the type it does yield; :func:`is_stream` says whether a
dataset is read in order or by index.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import IterableDataset

from ...errors import NoImageInItemError

# The key a dict item's image is looked up under first (Hugging Face's image columns are mostly "image").
IMAGE_KEY = "image"
# How encoded image files begin (JPEG, PNG, GIF, BMP, TIFF both byte orders; WebP is RIFF....WEBP), so that
# a WebDataset sample's b"3" label or JSON is not taken for its image.
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


def is_image_like(value: Any) -> bool:
    """Whether ``value`` can be an image: a tensor, PIL image, array, encoded file bytes or an undecoded HF image.

    Bytes count when they begin as a JPEG, PNG, WebP, GIF, BMP or TIFF file
    does; Hugging Face's ``Image(decode=False)`` columns hold ``{"bytes": ..., "path": ...}``.
    """
    if isinstance(value, Image.Image):
        return True
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value[:12]).startswith(_IMAGE_SIGNATURES) or bytes(value[8:12]) == b"WEBP"
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.ndim in (2, 3)
    return isinstance(value, Mapping) and ("bytes" in value or "path" in value) and set(value) <= {"bytes", "path"}


def _describe(item: Any) -> str:
    return f"{type(item).__module__}.{type(item).__qualname__}"


def image_of(item: Any, image_key: str | None = IMAGE_KEY) -> Any:
    """The image part of one item, not yet converted.

    Args:
        item: a dict (its value under ``image_key``, else its only image-like
            value), a tuple or list (its first element: ``(image, label)``), or
            the image itself.
        image_key: the dict key of the image; ``None`` only looks for the single
            image-like value.

    Returns:
        The image as the item holds it: a tensor, PIL image, array, encoded bytes
        or an undecoded Hugging Face image dict.

    Raises:
        NoImageInItemError: a dict without ``image_key`` and without exactly
            one image-like value; the message lists its keys.
    """
    if isinstance(item, Mapping):
        if image_key is not None and image_key in item:
            return item[image_key]
        candidates = [key for key, value in item.items() if is_image_like(value)]
        if len(candidates) == 1:
            return item[candidates[0]]
        keys = sorted(map(str, item))
        looked = f"no key {image_key!r} and " if image_key is not None else ""
        found = (f"{len(candidates)} image-like values ({', '.join(map(repr, sorted(map(str, candidates))))})"
                 if candidates else "no image-like value")
        raise NoImageInItemError(
            f"dataset item is a dict with keys {keys}: {looked}{found}; pass the key of its image "
            f"(image_key=... or --image-key)", keys)
    if isinstance(item, (tuple, list)) and item:
        return item[0]
    return item


def label_of(item: Any, label_key: str | None) -> int:
    """The integer label of an item: ``item[label_key]`` of a dict, the second element of a pair.

    WebDataset's ``.cls`` files arrive as bytes (``b"3"``) and are read as text.

    Raises:
        KeyError: a dict without ``label_key``; the message lists its keys.
        ValueError: the label is not an integer.
    """
    if isinstance(item, Mapping):
        if label_key is None or label_key not in item:
            raise KeyError(f"dataset item has no label {label_key!r}; its keys are {sorted(map(str, item))}")
        value = item[label_key]
    elif isinstance(item, (tuple, list)) and len(item) > 1:
        value = item[1]
    else:
        raise ValueError(f"dataset item of type {_describe(item)} carries no label; expected a dict or (image, label)")
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8").strip()
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"label {label_key!r} must be an integer class index, got {value!r}") from None


def is_hugging_face_stream(data: Any) -> bool:
    """Whether ``data`` is a ``datasets.IterableDataset`` (not a torch ``IterableDataset`` in every ``datasets``)."""
    return type(data).__module__.startswith("datasets.") and hasattr(data, "set_epoch")


def is_stream(data: Any) -> bool:
    """Whether ``data`` is read as a stream, in order, rather than by index.

    Any ``torch.utils.data.IterableDataset`` (a :class:`~byol_pytorch.data.TrainingStream`
    included), a ``datasets.IterableDataset`` and any other object without
    indexing (a ``webdataset`` pipeline, a generator).
    """
    return isinstance(data, IterableDataset) or is_hugging_face_stream(data) or not hasattr(data, "__getitem__")


def first_item(dataset: Iterable[Any]) -> Any:
    """Item 0 of a map-style dataset, or the first item of a stream (from a fresh iterator).

    Raises:
        ValueError: the dataset or stream is empty.
    """
    if is_stream(dataset):
        first = list(itertools.islice(iter(dataset), 1))
        if not first:
            raise ValueError(f"the stream {_describe(dataset)} yielded no item; expected images")
        return first[0]
    if hasattr(dataset, "__len__") and len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError(f"the dataset {_describe(dataset)} is empty; expected images")
    return dataset[0]  # type: ignore[index]


def check_first_item(dataset: Iterable[Any], image_key: str | None = IMAGE_KEY) -> Any:
    """Reads the first item and checks that it holds an image; meant to run before any file is written.

    Args:
        dataset: a map-style dataset (item 0 is read) or an iterable one (its
            first item is read from a fresh iterator).
        image_key: as in :func:`image_of`.

    Returns:
        The image found, as the item holds it (encoded bytes are not decoded
        here: one damaged photo is skipped in training, not a reason to refuse the source).

    Raises:
        NoImageInItemError: a dict item without an image; the message lists its keys.
        TypeError: the item (or the value found in it) is no kind of image; the
            message names its type.
        ValueError: the dataset is empty.
    """
    item = first_item(dataset)
    image = image_of(item, image_key)
    if not is_image_like(image):
        where = f" (inside an item of type {_describe(item)})" if image is not item else ""
        raise TypeError(
            f"the first item of the dataset holds a {_describe(image)}{where}, not an image; expected a "
            f"torch.Tensor, PIL.Image.Image, numpy.ndarray, encoded image bytes, an (image, label) pair or a "
            f"dict with an image under image_key")
    return image
