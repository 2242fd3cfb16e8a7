"""The images a command reads: folders (with their errors as instructions) and the evaluation splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from ..data import DigitsDataset, ImageFolderDataset
from ..data.folder import OnUnreadable
from ..errors import MissingClassFolderError, NoImagesError
from ..evaluate import labelled_split
from .common import CLIError, first_line


def image_folder(path: str, image_size: int, labelled: bool, flag: str,
                 on_unreadable: OnUnreadable = "next") -> ImageFolderDataset:
    """``ImageFolderDataset`` with its errors turned into instructions."""
    folder = Path(path)
    if not folder.exists():
        raise CLIError(f"{flag} {path}: no such folder; pass a folder of images (searched recursively)")
    if not folder.is_dir():
        raise CLIError(f"{flag} {path} is a file; pass the folder that holds the images")
    try:
        return ImageFolderDataset(folder, image_size, return_labels=labelled, on_unreadable=on_unreadable)
    except MissingClassFolderError as err:
        raise CLIError(f"{flag} {path} must hold one sub-folder of images per class "
                       f"(e.g. {path}/cat/1.jpg, {path}/dog/2.jpg)") from err
    except NoImagesError as err:
        raise CLIError(f"{flag} {path}: {first_line(err)}") from err


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
        assert isinstance(self.whole, ImageFolderDataset)
        unreadable = self.whole.skipped_files

        def readable(split: Dataset) -> int:
            assert isinstance(split, Subset)
            return sum(self.whole.files[i] not in unreadable for i in split.indices)  # type: ignore[attr-defined]

        left_out = f" ({len(unreadable)} unreadable file{'s' * (len(unreadable) != 1)} left out)" if unreadable else ""
        return (f"{self.data}: {readable(self.bank)} bank / {readable(self.query)} query images, "
                f"{len(self.whole.classes)} classes{left_out}")


def evaluation_sets(data: str | None, image_size: int, flag: str, seed: int = 0) -> EvaluationSets:
    """The bank, queries and whole labelled set for scoring a backbone: the digits, or a labelled folder.

    A folder's unreadable files are left out of the scores (not replaced by
    their neighbours), so the bank and the queries never share an image.
    """
    if data is None:
        bank = DigitsDataset(image_size, split="train", return_labels=True)
        query = DigitsDataset(image_size, split="test", return_labels=True)
        return EvaluationSets(bank, query, query, None)
    whole = image_folder(data, image_size, labelled=True, flag=flag, on_unreadable="return_none")
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
