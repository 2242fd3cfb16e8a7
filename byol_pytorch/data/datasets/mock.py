"""Deterministic random images for tests and smoke runs."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ...sizes import ImageSize, as_size
from .base import check_index


class MockDataset(Dataset):
    """Random images, the same ones on every run.

    Item ``i`` is drawn from a generator seeded with ``seed + i``, so it does not
    depend on access order, on other items or on the DataLoader worker that
    loads it.

    Args:
        image_size: ``H == W`` as an int, or an ``(h, w)`` pair.
        length: number of items.
        channels: channels per image.
        seed: base seed.
    """

    def __init__(
        self, image_size: ImageSize, length: int, channels: int = 3, seed: int = 0
    ) -> None:
        self.image_size = as_size(image_size, minimum=1)
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length <= 0:
            raise ValueError(f"length must be a positive int, got {length!r}")
        if (
            isinstance(channels, bool)
            or not isinstance(channels, (int, np.integer))
            or channels <= 0
        ):
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        self.length = int(length)
        self.channels = int(channels)
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        """Returns image ``index``, float32 of shape ``(channels, h, w)`` in ``[0, 1)``."""
        index = check_index(index, self.length)
        generator = torch.Generator().manual_seed(self.seed + index)
        return torch.rand((self.channels, *self.image_size), generator=generator)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(image_size={self.image_size}, length={self.length}, "
            f"channels={self.channels}, seed={self.seed})"
        )
