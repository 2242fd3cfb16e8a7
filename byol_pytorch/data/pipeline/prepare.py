"""What a trainer is given, made into the dataset its pipeline reads: checked, and photos sized in the loader.

:func:`prepare_dataset` reads the first item (so that a dataset without
images is refused before any folder is written) and then

* keeps a dataset whose items are tensors or arrays (batched as they are),
  and an :class:`~byol_pytorch.data.ImageFolderDataset`;
* wraps a map-style dataset whose items hold photos (PIL images, encoded
  bytes: a ``datasets.Dataset``) in a :class:`~byol_pytorch.data.PhotoDataset`,
  so the loader workers decode them and crop the views from the whole photo;
* makes a stream (a ``torch.utils.data.IterableDataset``, a
  ``datasets.IterableDataset``, a :class:`~byol_pytorch.data.TrainingStream`)
  into a :class:`~byol_pytorch.data.TrainingStream` of this process's part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from ...sizes import ImageSize
from ..datasets.folder import ImageFolderDataset
from ..datasets.photos import PhotoDataset
from ..formats.items import check_first_item, is_stream
from ..formats.photo import PhotoTransform
from ..streams.stream import TrainingStream
from ..views.crops import CropsInLoader


def holds_photos(image: Any) -> bool:
    """Whether an item's image is a photo to decode or size (PIL, encoded bytes, an undecoded HF image)."""
    return isinstance(image, (Image.Image, bytes, bytearray, memoryview, Mapping))


def takes_loader_crops(dataset: Any) -> bool:
    """Whether the loader can crop ``dataset``'s views from whole photos (a dataset :func:`prepare_dataset` made).

    Folders and :class:`PhotoDataset` s can, as can a :class:`TrainingStream`
    whose transform is a :class:`PhotoTransform`; all of them without crops yet.
    """
    return isinstance(dataset, CropsInLoader) and dataset.takes_crops()


def prepare_dataset(dataset: Any, *, image_size: ImageSize | None, image_key: str | None, rank: int,
                    world_size: int, seed: int, shuffle_buffer: int) -> Dataset | TrainingStream:
    """``dataset`` as the data pipeline reads it (see the module's notes).

    Args:
        dataset: what the user gave the trainer.
        image_size: the views' size (photos are sized to it in the loader; needed for photos).
        image_key: the key of a dict item's image.
        rank: this process's index (a stream is split by it).
        world_size: the number of processes.
        seed: a stream's shuffle seed.
        shuffle_buffer: a stream's samples per loader worker to draw its order from.

    Raises:
        NoImageInItemError: dict items without an image (the message lists the keys).
        TypeError: items that are no kind of image (the message names the type).
        ValueError: an empty dataset or stream.
    """
    if isinstance(dataset, TrainingStream):
        check_first_item(dataset.source_samples(), getattr(dataset.transform, "image_key", image_key))
        return dataset.for_process(rank, world_size)
    stream = is_stream(dataset)
    # A stream's first item as one slot reads it (a webdataset pipeline without its splitters, which may refuse).
    image = check_first_item(TrainingStream(dataset).source_samples() if stream else dataset, image_key)
    photos = holds_photos(image) and not isinstance(dataset, ImageFolderDataset)
    if photos and image_size is None:
        raise ValueError(f"the items hold photos ({type(image).__name__}) to size, but no image_size was given")
    transform = PhotoTransform(image_size, image_key=image_key) if photos else None
    if stream:
        return TrainingStream(dataset, rank=rank, world_size=world_size, transform=transform,
                              shuffle_buffer=shuffle_buffer, seed=seed)
    if transform is not None and not isinstance(dataset, PhotoDataset):
        return PhotoDataset(dataset, transform)
    return dataset
