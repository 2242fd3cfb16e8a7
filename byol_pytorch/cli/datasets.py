"""The images a command reads (folders, tar shards, Hugging Face data, Parquet), errors as instructions, and the
evaluation splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from ..data import DigitsDataset, ImageFolderDataset, TrainingStream, UnreadableImageError, UnreadableReports
from ..data.datasets.base import OnUnreadable
from ..data.formats.items import IMAGE_KEY, check_first_item
from ..errors import MissingClassFolderError, NoImageInItemError, NoImagesError
from ..evaluate import labelled_split
from .common import CLIError, first_line
from .sources import DEFAULT_LABEL_COLUMN, SourceError, indexed_images, source_kind, training_images, unreadable_items


def image_folder(path: str, image_size: int, labelled: bool, flag: str,
                 on_unreadable: OnUnreadable = "next", reports: UnreadableReports | None = None) -> ImageFolderDataset:
    """``ImageFolderDataset`` with its errors turned into instructions (``reports`` shared with the run's others)."""
    folder = Path(path)
    if not folder.exists():
        raise CLIError(f"{flag} {path}: no such folder; pass a folder of images (searched recursively)")
    if not folder.is_dir():
        raise CLIError(f"{flag} {path} is a file; pass the folder that holds the images")
    try:
        return ImageFolderDataset(folder, image_size, return_labels=labelled, on_unreadable=on_unreadable,
                                  reports=reports)
    except MissingClassFolderError as err:
        raise CLIError(f"{flag} {path} must hold one sub-folder of images per class "
                       f"(e.g. {path}/cat/1.jpg, {path}/dog/2.jpg)") from err
    except NoImagesError as err:
        raise CLIError(f"{flag} {path}: {first_line(err)}") from err


def source_images(data: str, image_size: int, flag: str, *, labelled: bool, on_unreadable: OnUnreadable = "next",
                  image_key: str | None = IMAGE_KEY, label_column: str | None = None,
                  reports: UnreadableReports | None = None) -> Dataset:
    """Every image of what ``data`` names (a folder, tar shards, a ``save_to_disk`` folder, Parquet), by index.

    The first item is read, so that a source without images (or without the
    image key) is refused here, before anything is written.
    """
    try:
        if source_kind(data) == "folder":
            return image_folder(data, image_size, labelled, flag, on_unreadable, reports)
        images = indexed_images(data, image_size, labelled=labelled, image_key=image_key,
                                label_column=label_column, on_unreadable=on_unreadable)
        check_first_item(images.source, images.transform.image_key)  # type: ignore[attr-defined]
    except SourceError as err:  # its message starts with the source
        raise CLIError(f"{flag} {first_line(err)}") from err
    except (NoImageInItemError, NoImagesError, FileNotFoundError, UnreadableImageError) as err:
        raise CLIError(f"{flag} {data}: {first_line(err)}") from err
    return images


def training_set(data: str | None, image_size: int, *, batch_size: int, rank: int, world_size: int,
                 image_key: str | None, seed: int, shuffle_buffer: int,
                 reports: UnreadableReports | None = None) -> Dataset | TrainingStream:
    """The images ``train`` learns from: the digits, a folder or Hugging Face data by index, shards as a stream.

    Raises:
        CLIError: the source cannot be read, or holds fewer images than one batch of every process.
    """
    if data is None:
        train_set: Dataset | TrainingStream = DigitsDataset(image_size, split="train")
    elif source_kind_or_error(data, "--data") == "shards":
        try:
            train_set = training_images(data, image_size, rank=rank, world_size=world_size, seed=seed,
                                        shuffle_buffer=shuffle_buffer)
        except SourceError as err:
            raise CLIError(f"--data {first_line(err)}") from err
        _check_stream(train_set, data)
        return train_set
    else:
        train_set = source_images(data, image_size, "--data", labelled=False, image_key=image_key, reports=reports)
    if len(train_set) < batch_size * world_size:  # type: ignore[arg-type]
        raise CLIError(f"{len(train_set)} images are fewer than one batch ({batch_size} x "  # type: ignore[arg-type]
                       f"{world_size} processes); lower --batch-size or add images")
    return train_set


def source_kind_or_error(data: str, flag: str) -> str:
    """:func:`~byol_pytorch.cli.sources.source_kind`, its error as an instruction."""
    try:
        return source_kind(data)
    except SourceError as err:
        raise CLIError(f"{flag} {first_line(err)}") from err


def _check_stream(stream: TrainingStream, data: str) -> None:
    """Reads the first sample of the shards, so that shards without images are refused before training."""
    samples = stream.source_samples()
    if next(samples, None) is None:
        raise CLIError(f"--data {data}: no sample of the shards holds an image (.jpg, .jpeg, .png or .webp); "
                       "each shard that could not be read was named above")


def image_count(images: Dataset | TrainingStream) -> str:
    """How many images a training set holds, in words ("1,347 images", or "a stream of images")."""
    if isinstance(images, TrainingStream):
        return "a stream of images"
    return f"{len(images)} images"  # type: ignore[arg-type]


@dataclass(frozen=True)
class EvaluationSets:
    """The images a backbone is scored on: a bank, queries, and the whole labelled set they come from."""

    bank: Dataset
    query: Dataset
    whole: Dataset
    data: str | None

    def description(self) -> str:
        """What the scores were measured on; files found unreadable so far are left out of the counts."""
        if self.data is None:
            return f"digits: {len(self.bank)} train images as bank, {len(self.query)} test images as queries"
        unreadable = unreadable_items(self.whole)

        def readable(split: Dataset) -> int:
            assert isinstance(split, Subset)
            return sum(i not in unreadable for i in split.indices)

        noun = "file" if isinstance(self.whole, ImageFolderDataset) else "image"
        left_out = f" ({len(unreadable)} unreadable {noun}{'s' * (len(unreadable) != 1)} left out)" if unreadable else ""
        classes = len(torch.unique(self.whole.labels))  # type: ignore[attr-defined]
        return (f"{self.data}: {readable(self.bank)} bank / {readable(self.query)} query images, "
                f"{classes} classes{left_out}")


def evaluation_sets(data: str | None, image_size: int, flag: str, seed: int = 0, image_key: str | None = IMAGE_KEY,
                    label_column: str | None = DEFAULT_LABEL_COLUMN,
                    reports: UnreadableReports | None = None) -> EvaluationSets:
    """The bank, queries and whole labelled set for scoring a backbone: the digits, or a labelled source.

    A source's unreadable images are left out of the scores (not replaced by
    their neighbours), so the bank and the queries never share an image.
    """
    if data is None:
        bank = DigitsDataset(image_size, split="train", return_labels=True)
        query = DigitsDataset(image_size, split="test", return_labels=True)
        return EvaluationSets(bank, query, query, None)
    whole = source_images(data, image_size, flag, labelled=True, on_unreadable="return_none", image_key=image_key,
                          label_column=label_column, reports=reports)
    try:
        bank, query = labelled_split(whole, seed)
    except ValueError as err:
        raise CLIError(f"{flag} {data}: {first_line(err)}") from err
    return EvaluationSets(bank, query, whole, data)


class Unlabelled(Dataset):
    """Gives each image of an unlabelled dataset the label 0, for ``extract_features``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | None:
        item = self.dataset[index]
        if item is None:  # an unreadable file, which extract_features leaves out
            return None
        return (item[0] if isinstance(item, (tuple, list)) else item), 0
