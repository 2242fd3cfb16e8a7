"""The images a command reads: folders (with their errors as instructions) and the evaluation splits."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..data import DigitsDataset, ImageFolderDataset
from ..evaluate import labelled_split
from .common import CLIError, first_line


def image_folder(path: str, image_size: int, labelled: bool, flag: str) -> Dataset:
    """``ImageFolderDataset`` with its errors turned into instructions."""
    folder = Path(path)
    if not folder.exists():
        raise CLIError(f"{flag} {path}: no such folder; pass a folder of images (searched recursively)")
    if not folder.is_dir():
        raise CLIError(f"{flag} {path} is a file; pass the folder that holds the images")
    try:
        return ImageFolderDataset(folder, image_size, return_labels=labelled)
    except ValueError as err:
        message = first_line(err)
        if labelled and "class folders" in message:
            raise CLIError(f"{flag} {path} must hold one sub-folder of images per class "
                           f"(e.g. {path}/cat/1.jpg, {path}/dog/2.jpg)") from err
        raise CLIError(f"{flag} {path}: {message}") from err


def evaluation_sets(data: str | None, image_size: int, flag: str,
                    seed: int = 0) -> tuple[Dataset, Dataset, Dataset, str]:
    """``(bank, queries, whole labelled set, description)`` for scoring a backbone."""
    if data is None:
        bank = DigitsDataset(image_size, split="train", return_labels=True)
        query = DigitsDataset(image_size, split="test", return_labels=True)
        description = f"digits: {len(bank)} train images as bank, {len(query)} test images as queries"
        return bank, query, query, description
    whole = image_folder(data, image_size, labelled=True, flag=flag)
    try:
        bank, query = labelled_split(whole, seed)
    except ValueError as err:
        raise CLIError(f"{flag} {data}: {first_line(err)}") from err
    description = f"{data}: {len(bank)} bank / {len(query)} query images, {len(whole.classes)} classes"
    return bank, query, whole, description


class Unlabelled(Dataset):
    """Gives each image of an unlabelled dataset the label 0, for ``extract_features``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        item = self.dataset[index]
        return (item[0] if isinstance(item, (tuple, list)) else item), 0
