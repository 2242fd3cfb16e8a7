"""scikit-learn's handwritten digits: real labelled images that ship with a package."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ...sizes import ImageSize, as_size
from .base import check_index

Split = Literal["train", "test", "all"]


def _check_channels_and_fraction(channels: int, test_fraction: float) -> None:
    """Rejects a channel count that is not a positive int and a test share outside ``(0, 1)``."""
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels <= 0:
        raise ValueError(f"channels must be a positive int, got {channels!r}")
    if not isinstance(test_fraction, (int, float)) or not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be a number strictly between 0 and 1, got {test_fraction!r}")


def _split_indices(targets: np.ndarray, split: Split, test_fraction: float, seed: int) -> np.ndarray:
    """Sorted positions of ``split`` in the full set: a stratified, seeded train/test split, or all."""
    from sklearn.model_selection import train_test_split

    all_indices = np.arange(len(targets))
    if split == "all":
        return all_indices
    train_indices, test_indices = train_test_split(
        all_indices,
        test_size=test_fraction,
        random_state=seed,
        stratify=targets,
    )
    # Sorted so items keep the original dataset order within a split.
    return np.sort(train_indices if split == "train" else test_indices)


class DigitsDataset(Dataset):
    """scikit-learn's handwritten digits, upsampled to a usable image size.

    1,797 real 8x8 grayscale digits (``sklearn.datasets.load_digits``, shipped
    with scikit-learn, so nothing is downloaded). Pixels are scaled from 0..16 to
    ``[0, 1]``, upsampled with antialiased bilinear interpolation and repeated to
    ``channels`` so that standard torchvision networks accept them. The whole
    split is computed once at construction and stored as one channel, which
    takes ``len * h * w * 4`` bytes (7 MB for the full set at 32x32).

    Args:
        image_size: output ``H == W`` as an int, or an ``(h, w)`` pair.
        split: ``"train"``, ``"test"`` or ``"all"``.
        return_labels: return ``(image, digit)`` instead of the image alone.
        channels: channels per image (the gray values are repeated).
        test_fraction: share of the images in the test split, in ``(0, 1)``.
        seed: seed of the split; the split is stratified by digit, so both sides
            hold every digit in the same proportions.

    Attributes:
        indices: ``LongTensor`` of positions in the full 1,797-image set.
        labels: ``LongTensor`` of digits 0..9, one per item.
        classes: ``["0", ..., "9"]``.
    """

    def __init__(
        self,
        image_size: ImageSize = 32,
        split: Split = "train",
        return_labels: bool = False,
        channels: int = 3,
        test_fraction: float = 0.25,
        seed: int = 0,
    ) -> None:
        from sklearn.datasets import load_digits

        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        self.image_size = as_size(image_size, minimum=1)
        _check_channels_and_fraction(channels, test_fraction)
        self.split = split
        self.return_labels = bool(return_labels)
        self.channels = int(channels)
        self.test_fraction = float(test_fraction)
        self.seed = int(seed)

        digits = load_digits()
        images = np.asarray(digits.images, dtype=np.float32)  # (N, 8, 8), 0..16
        targets = np.asarray(digits.target, dtype=np.int64)

        chosen = _split_indices(targets, split, self.test_fraction, self.seed)
        pixels = torch.from_numpy(images[chosen] / 16.0).unsqueeze(1)
        if tuple(pixels.shape[-2:]) != self.image_size:
            pixels = F.interpolate(
                pixels,
                size=self.image_size,
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        self._gray = pixels.clamp_(0.0, 1.0).contiguous()  # (N, 1, h, w)
        self.indices = torch.from_numpy(chosen.astype(np.int64))
        self.labels = torch.from_numpy(targets[chosen])
        self.classes = [str(digit) for digit in range(10)]

    @property
    def images(self) -> torch.Tensor:
        """All images as a read-only ``(N, channels, h, w)`` view (no copy)."""
        return self._gray.expand(-1, self.channels, -1, -1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, int]:
        """Returns image ``index`` of shape ``(channels, h, w)``, or ``(image, digit)``."""
        position = check_index(index, len(self.labels))
        # repeat, not expand: a copy the caller's in-place augmentations may modify.
        image = self._gray[position].repeat(self.channels, 1, 1)
        if self.return_labels:
            return image, int(self.labels[position])
        return image

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(image_size={self.image_size}, split={self.split!r}, "
            f"len={len(self)}, channels={self.channels}, return_labels={self.return_labels})"
        )
