"""Deterministic random images (byol_pytorch/data/datasets/mock.py)."""

from __future__ import annotations

import pytest
import torch

from byol_pytorch.data import MockDataset, collate_images


def test_mock_dataset_shape_and_determinism() -> None:
    dataset = MockDataset(16, length=5)
    assert len(dataset) == 5
    item = dataset[2]
    assert item.shape == (3, 16, 16) and item.dtype == torch.float32
    assert 0.0 <= item.min() and item.max() <= 1.0
    assert torch.equal(item, MockDataset(16, length=5)[2])
    assert torch.equal(dataset[-1], dataset[4])
    assert not torch.equal(dataset[0], dataset[1])
    assert not torch.equal(dataset[0], MockDataset(16, length=5, seed=1)[0])


def test_mock_dataset_rectangular_and_channels() -> None:
    dataset = MockDataset((6, 10), length=2, channels=1)
    assert dataset[0].shape == (1, 6, 10)
    assert collate_images([dataset[0], dataset[1]]).shape == (2, 1, 6, 10)


def test_mock_dataset_validation() -> None:
    with pytest.raises(ValueError, match="length.*0"):
        MockDataset(8, length=0)
    with pytest.raises(ValueError, match="image_size.*-4"):
        MockDataset(-4, length=3)
    with pytest.raises(ValueError, match=r"image_size.*\(8, 0\)"):
        MockDataset((8, 0), length=3)
    with pytest.raises(ValueError, match="channels"):
        MockDataset(8, length=3, channels=0)
    with pytest.raises(IndexError, match="5"):
        MockDataset(8, length=3)[5]
