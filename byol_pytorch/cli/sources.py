"""The command line's sources: what a ``--data`` names, opened: an image folder, tar shards, a ``save_to_disk`` folder, Parquet files.

============================  =====================================  ==========================
``--data``                    read with                              labels (``eval``)
============================  =====================================  ==========================
``photos/``                   :class:`ImageFolderDataset`            the sub-folder of each file
``shards/train-{0..127}.tar`` ``webdataset`` (a stream to train on)  each sample's ``.cls``
``hf/`` (``save_to_disk``)    ``datasets.load_from_disk``            ``label_column``
``data/*.parquet``            ``datasets.Dataset.from_parquet``      ``label_column``
============================  =====================================  ==========================

Training reads shards as a :class:`~byol_pytorch.data.TrainingStream`
(no length, split across processes and workers); evaluation and embedding
read every source by index, each item once.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from ..data import ImageFolderDataset, PhotoDataset, PhotoTransform, TrainingStream
from ..data.datasets.base import DecodedDataset, OnUnreadable
from ..data.formats.items import IMAGE_KEY
from ..data.streams.shards import ShardIndex, expand_shards, looks_like_shards
from ..sizes import ImageSize

SourceKind = Literal["folder", "shards", "saved", "parquet"]

# The label column ``eval`` reads from Hugging Face data when none is named.
DEFAULT_LABEL_COLUMN = "label"


class SourceError(ValueError):
    """What ``--data`` names cannot be read as images; the message says what was expected.

    Attributes:
        data: the value as given.
    """

    def __init__(self, message: str, data: str) -> None:
        super().__init__(message)
        self.data = data


def source_kind(data: str) -> SourceKind:
    """Which kind of source ``data`` names.

    Raises:
        SourceError: nothing exists there (a folder, a ``.parquet`` file or pattern, ``.tar`` shards).
    """
    if looks_like_shards(data):
        return "shards"
    if data.endswith(".parquet"):
        return "parquet"
    folder = Path(data)
    if not folder.exists():
        raise SourceError(f"{data}: no such folder; pass a folder of images (searched recursively), tar shards "
                          "('shards/train-{000000..000127}.tar'), a save_to_disk folder or .parquet files", data)
    if folder.is_dir() and ((folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()):
        return "saved"
    if folder.is_dir() and _only_parquet(folder):
        return "parquet"
    return "folder"


def _only_parquet(folder: Path) -> bool:
    files = [p for p in folder.iterdir() if p.is_file()]
    return bool(files) and all(p.suffix == ".parquet" for p in files)


def _parquet_files(data: str) -> list[str]:
    files = sorted(glob.glob(os.path.join(data, "*.parquet"))) if os.path.isdir(data) else sorted(glob.glob(data))
    if not files:
        raise SourceError(f"{data}: no Parquet file matches", data)
    return files


def hugging_face_rows(data: str, kind: SourceKind) -> Any:
    """The ``datasets.Dataset`` a ``save_to_disk`` folder or Parquet files hold (images decode when read).

    Raises:
        SourceError: ``datasets`` is missing, or the folder holds a ``DatasetDict`` (the message names its splits).
    """
    try:
        import datasets
    except ImportError:
        raise SourceError(f"{data}: reading Hugging Face data needs the datasets package: "
                          "pip install 'byol-pytorch[datasets]'", data) from None
    # datasets draws a progress bar for converting a few files; quiet it here and restore the user's choice.
    was_disabled = datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()
    try:
        loaded = (datasets.Dataset.from_parquet(_parquet_files(data)) if kind == "parquet"
                  else datasets.load_from_disk(data))
    finally:
        if not was_disabled:
            datasets.utils.enable_progress_bars()
    if isinstance(loaded, datasets.DatasetDict):
        splits = ", ".join(f"{data.rstrip('/')}/{name}" for name in loaded)
        raise SourceError(f"{data} holds several splits; pass one of them: {splits}", data)
    return loaded


def _column_labels(rows: Any, label_column: str, data: str) -> torch.Tensor:
    if label_column not in rows.column_names:
        raise SourceError(f"{data} has no label column {label_column!r}; its columns are {rows.column_names} "
                          "(--label-column names it)", data)
    try:
        return torch.as_tensor([int(value) for value in rows[label_column]], dtype=torch.long)
    except (TypeError, ValueError):
        raise SourceError(f"{data}: label column {label_column!r} must hold integer class indices", data) from None


def _shard_labels(index: ShardIndex, data: str) -> torch.Tensor:
    if not index.has_labels():
        raise SourceError(f"{data}: scoring needs a .cls member (the class index) in every sample", data)
    return torch.tensor([int(index[i]["label"]) for i in range(len(index))], dtype=torch.long)


def indexed_images(data: str, image_size: ImageSize, *, labelled: bool, image_key: str | None = IMAGE_KEY,
                   label_column: str | None = None,
                   on_unreadable: OnUnreadable = "return_none") -> ImageFolderDataset | PhotoDataset:
    """Every image of a source by index, as evaluation crops (with labels when ``labelled``).

    Args:
        data: what ``--data`` names.
        image_size: the side of the images.
        labelled: items are ``(image, label)``; the dataset's ``labels`` holds them all.
        image_key: the image's key or column (Hugging Face data).
        label_column: the label's column (Hugging Face data; default ``"label"``).
        on_unreadable: what an unreadable image's index gives.

    Returns:
        An :class:`ImageFolderDataset` for a folder, else a :class:`PhotoDataset` whose ``names`` name each item.

    Raises:
        SourceError: the source cannot be read as (labelled) images.
    """
    kind = source_kind(data)
    if kind == "folder":
        return ImageFolderDataset(data, image_size, return_labels=labelled, on_unreadable=on_unreadable)
    labels: torch.Tensor | None = None
    if kind == "shards":
        source: Any = ShardIndex(expand_shards(data))
        names, key = source.keys, "image"
        if labelled:
            labels = _shard_labels(source, data)
        column = "label"
    else:
        source = hugging_face_rows(data, kind)
        names, key = [f"{data}#{i}" for i in range(len(source))], image_key
        column = label_column or DEFAULT_LABEL_COLUMN
        if labelled:
            labels = _column_labels(source, column, data)
    transform = PhotoTransform(image_size, image_key=key, label_key=column if labelled else None)
    return PhotoDataset(source, transform, on_unreadable=on_unreadable, names=names, labels=labels)


def training_images(data: str, image_size: ImageSize, *, rank: int = 0, world_size: int = 1,
                    image_key: str | None = IMAGE_KEY, seed: int = 0,
                    shuffle_buffer: int = 1000) -> Dataset | TrainingStream:
    """The images of a source to train on: by index, or for shards a stream of this process's part.

    Args:
        data: what ``--data`` names.
        image_size: the side of the views.
        rank: this process's index (shards are split across processes by it).
        world_size: the number of processes.
        image_key: the image's key or column (Hugging Face data).
        seed: the stream's shuffle seed.
        shuffle_buffer: samples per loader worker the stream's order is drawn from.

    Raises:
        SourceError: local shards that do not exist, or what :func:`indexed_images` raises.
    """
    if source_kind(data) == "shards":
        urls = expand_shards(data)
        # Local shards are checked here; remote ones (a URL, 'pipe:...') are webdataset's to open.
        missing = [url for url in urls if "://" not in url and not url.startswith("pipe:") and not os.path.isfile(url)]
        if missing:
            raise SourceError(f"{data}: {len(missing)} of the {len(urls)} shards do not exist, the first "
                              f"{missing[0]!r}", data)
        return TrainingStream(urls, rank=rank, world_size=world_size, seed=seed,
                              transform=PhotoTransform(image_size, image_key="image"), shuffle_buffer=shuffle_buffer)
    return indexed_images(data, image_size, labelled=False, image_key=image_key, on_unreadable="next")


def item_names(images: DecodedDataset) -> list[str]:
    """The name of each item of :func:`indexed_images`: file paths, ``shard:key`` or ``DATA#row``."""
    return [images.name(i) for i in range(len(images))]


def unreadable_items(images: DecodedDataset) -> set[int]:
    """Indices of the items of :func:`indexed_images` found unreadable so far."""
    return images.skipped_indices
