"""Photos of any size, from any item that holds one, as training or evaluation images of one size.

A Hugging Face row, a WebDataset sample or a Parquet row holds a photo (a PIL
image, or the encoded file's bytes) of its own size. :class:`PhotoTransform`
turns such an item into what a batch needs: the standard evaluation crop at
``image_size`` (float32 in [0, 1]), or with ``views`` the two training views'
crops drawn from the whole photo (uint8 :class:`~byol_pytorch.data.crops.CroppedViews`),
as :class:`~byol_pytorch.data.ImageFolderDataset` does for files.
:class:`PhotoDataset` applies it to a map-style dataset, lazily, in the loader's
workers; ``byol_pytorch.data.streams`` applies it to streams.
"""

from __future__ import annotations

import copy
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from ..model.augment import as_size
from .crops import CroppedViews, LoaderCrops
from .decode import load_upright_rgb8, pil_to_uint8
from .evaluation import EVAL_RESIZE, resize_and_center_crop
from .folder import OnUnreadable
from .images import ImageSize, check_index, to_image_tensor
from .items import IMAGE_KEY, decode_image, image_of, label_of

_LOG = logging.getLogger(__name__)


class UnreadableImageError(ValueError):
    """An item's image could not be decoded (corrupt or truncated bytes, a missing file).

    Attributes:
        reason: what the decoder said, on one line.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class PhotoTransform:
    """Turns an item holding a photo into an image of ``image_size``, or the two training views.

    Args:
        image_size: output ``H == W`` as an int, or an ``(h, w)`` pair.
        image_key: the dict key of the image (see :func:`~byol_pytorch.data.items.image_of`).
        label_key: with a key (or ``"pair"`` for ``(image, label)`` items), the
            transform returns ``(image, label)``.
        views: crop both training views from the whole photo in the loader
            (uint8 ``CroppedViews``) instead of the evaluation transform.
        resize_ratio: the evaluation transform's resize, relative to ``image_size``.
    """

    def __init__(self, image_size: ImageSize, image_key: str | None = IMAGE_KEY, label_key: str | None = None,
                 views: LoaderCrops | None = None, resize_ratio: float = EVAL_RESIZE) -> None:
        if views is not None and not isinstance(views, LoaderCrops):
            raise TypeError(f"views must be a LoaderCrops or None, got {type(views).__name__}")
        self.image_size = as_size(image_size, minimum=1)
        if views is not None and views.spec.size != self.image_size:
            raise ValueError(f"views crop to {views.spec.size} but image_size is {self.image_size}; use one size")
        self.image_key, self.label_key, self.views = image_key, label_key, views
        self.resize_ratio = float(resize_ratio)

    def with_views(self, views: LoaderCrops | None) -> PhotoTransform:
        """A copy that draws training views (or, with ``None``, the evaluation crop)."""
        return PhotoTransform(self.image_size, self.image_key, self.label_key, views, self.resize_ratio)

    def __call__(self, item: Any, index: int = 0, epoch: int = 0) -> Any:
        """The image (or views) of ``item``, with its label when ``label_key`` is set.

        Args:
            item: a dataset item holding a photo.
            index: the item's index; with ``views``, the crops are drawn from
                ``(seed, epoch, index)``.
            epoch: the epoch (a stream's pass).

        Returns:
            float32 ``(3, h, w)`` in [0, 1], or ``CroppedViews`` of uint8
            ``(3, h, w)`` with ``views``; ``(that, label)`` with a ``label_key``.

        Raises:
            UnreadableImageError: the photo's bytes do not decode.
        """
        image = self._image(image_of(item, self.image_key), index, epoch)
        if self.label_key is None:
            return image
        return image, label_of(item, None if self.label_key == "pair" else self.label_key)

    def _image(self, value: Any, index: int, epoch: int) -> torch.Tensor | CroppedViews:
        try:
            photo = decode_image(value)
            if not isinstance(photo, Image.Image):
                # Tensors and arrays are already decoded: convert, then crop or resize as a picture would be.
                photo = _tensor_to_pil(to_image_tensor(photo))
            if self.views is not None:
                return self.views(photo, index, epoch, encoded=_encoded_bytes(value))
            # Ask a JPEG decoder for no more than the resized size needs (a no-op for other formats).
            side = math.ceil(max(self.image_size) * self.resize_ratio)
            photo.draft(None, (side, side))
            decoded = pil_to_uint8(load_upright_rgb8(photo))
        # PIL reports corrupt data with many exception types (OSError, SyntaxError,
        # struct.error, DecompressionBombError...); a missing file is FileNotFoundError.
        except Exception as error:  # noqa: BLE001
            # PIL names the in-memory file it read ("<_io.BytesIO object at 0x...>"): no help to anyone.
            reason = " ".join(re.sub(r" ?<_io\.BytesIO object at 0x[0-9a-f]+>", "", f"{type(error).__name__}: {error}").split())
            raise UnreadableImageError(f"cannot decode the image: {reason}", reason) from error
        return resize_and_center_crop(decoded, self.image_size, self.resize_ratio)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(image_size={self.image_size}, image_key={self.image_key!r}, "
                f"label_key={self.label_key!r}, views={self.views!r})")


def _encoded_bytes(value: Any) -> bytes | None:
    """The encoded file ``value`` holds (bytes, or an undecoded Hugging Face image's), else ``None``."""
    if isinstance(value, Mapping):
        value = value.get("bytes")
    return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else None


def _tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """A float ``(C, H, W)`` image in [0, 1] as an 8-bit PIL image (1 or 3 channels kept, 4 to RGB)."""
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    if pixels.shape[0] == 4:
        pixels = pixels[:3]
    array = pixels.permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


class PhotoDataset(Dataset):
    """A map-style dataset whose items hold photos (a ``datasets.Dataset``), as images of one size.

    Nothing is decoded until an item is read, so a ``DataLoader``'s workers
    decode. An item whose image does not decode is reported once on stderr
    (logger ``byol_pytorch.data.photos``) and, as in
    :class:`~byol_pytorch.data.ImageFolderDataset`, replaced by the next
    readable one (``on_unreadable="next"``) or ``None`` (``"return_none"``,
    for evaluation).

    Args:
        source: anything with ``len()`` and integer indexing whose items hold a photo.
        transform: what each item becomes (its size, key, label, views).
        on_unreadable: ``"next"`` or ``"return_none"``.
        names: a name per item for messages and listings (default: ``"item N"``).
        labels: every item's label, if known without decoding (evaluation splits read it).

    Attributes:
        labels: ``LongTensor`` of the labels, or ``None``.
    """

    def __init__(self, source: Any, transform: PhotoTransform, on_unreadable: OnUnreadable = "next",
                 names: list[str] | None = None, labels: torch.Tensor | None = None) -> None:
        if on_unreadable not in ("next", "return_none"):
            raise ValueError(f"on_unreadable must be 'next' or 'return_none', got {on_unreadable!r}")
        if names is not None and len(names) != len(source):
            raise ValueError(f"names has {len(names)} entries for {len(source)} items; expected one per item")
        self.source, self.transform, self.on_unreadable, self.names = source, transform, on_unreadable, names
        self.labels = labels
        # Shared memory, so that the marks and the epoch set here reach (and come back from) loader workers.
        self._unreadable = torch.zeros(len(source), dtype=torch.uint8).share_memory_()
        self._epoch = torch.zeros(1, dtype=torch.long).share_memory_()
        self._item_epoch: int | None = None

    @property
    def views(self) -> LoaderCrops | None:
        """The loader crops drawn for training, or ``None`` (the evaluation crop)."""
        return self.transform.views

    def with_views(self, views: LoaderCrops) -> PhotoDataset:
        """A copy that yields the two training views' crops; it shares the source and the unreadable marks."""
        twin = copy.copy(self)
        twin.transform = self.transform.with_views(views)
        twin._epoch = torch.zeros(1, dtype=torch.long).share_memory_()
        return twin

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch the loader crops are drawn for (seen by running ``DataLoader`` workers)."""
        self._epoch[0] = int(epoch)

    def set_item_epoch(self, epoch: int | None) -> None:
        """Sets the epoch of the loader crops for the items this process reads next (``None``: :meth:`set_epoch`'s).

        Not shared with ``DataLoader`` workers: a training loader's workers set
        it before every item, from the epoch that comes with the item's index.
        """
        self._item_epoch = None if epoch is None else int(epoch)

    @property
    def skipped_count(self) -> int:
        """Items found unreadable so far, by this process or its ``DataLoader`` workers."""
        return int(self._unreadable.sum())

    @property
    def skipped_indices(self) -> set[int]:
        """Indices of the items found unreadable so far."""
        return set(torch.nonzero(self._unreadable).flatten().tolist())

    def name(self, index: int) -> str:
        """Item ``index``'s name in messages: its entry of ``names``, else ``item N``."""
        return self.names[index] if self.names is not None else f"item {index}"

    def __len__(self) -> int:
        return len(self.source)

    def _decode(self, position: int, index: int) -> Any:
        if self._unreadable[position]:
            return None
        try:
            epoch = self._item_epoch if self._item_epoch is not None else int(self._epoch[0])
            return self.transform(self.source[position], index, epoch)
        except UnreadableImageError as error:
            first = self._unreadable[position].item() == 0
            self._unreadable[position] = 1
            if first:
                _LOG.warning("skipped unreadable image %s: %s", self.name(position), error.reason)
            return None

    def __getitem__(self, index: int) -> Any:
        """Item ``index`` transformed; for an unreadable one, what ``on_unreadable`` says.

        Raises:
            RuntimeError: with ``on_unreadable="next"``, no item decodes.
        """
        start = check_index(index, len(self))
        attempts = 1 if self.on_unreadable == "return_none" else len(self)
        for offset in range(attempts):
            item = self._decode((start + offset) % len(self), start)
            if item is not None:
                return item
        if self.on_unreadable == "return_none":
            return None
        raise RuntimeError(f"none of the {len(self)} items could be decoded; each was reported on stderr")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(items={len(self)}, transform={self.transform!r})"
