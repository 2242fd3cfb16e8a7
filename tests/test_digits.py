"""scikit-learn's digits as a dataset (byol_pytorch/data/datasets/digits.py)."""

from __future__ import annotations

import pytest
import torch

from byol_pytorch.data import DigitsDataset, collate_images


@pytest.fixture(scope="module")
def digits_splits() -> tuple[DigitsDataset, DigitsDataset]:
    return DigitsDataset(split="train"), DigitsDataset(split="test")


def test_digits_shapes_and_range(digits_splits: tuple[DigitsDataset, DigitsDataset]) -> None:
    train, _ = digits_splits
    image = train[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])
    images = train.images
    assert images.shape == (len(train), 3, 32, 32)
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() > 0.9
    assert collate_images([train[i] for i in range(4)]).shape == (4, 3, 32, 32)


def test_digits_split_sizes_disjoint_and_labelled(
    digits_splits: tuple[DigitsDataset, DigitsDataset],
) -> None:
    train, test = digits_splits
    assert len(train) + len(test) == 1797
    assert len(test) == pytest.approx(0.25 * 1797, abs=1)
    assert not set(train.indices.tolist()) & set(test.indices.tolist())
    assert set(train.indices.tolist()) | set(test.indices.tolist()) == set(range(1797))
    assert len(DigitsDataset(split="all")) == 1797
    for split in (train, test):
        assert split.labels.dtype == torch.long
        assert set(split.labels.tolist()) == set(range(10))  # stratified: every digit
    assert train.classes == [str(d) for d in range(10)]


def test_digits_deterministic(digits_splits: tuple[DigitsDataset, DigitsDataset]) -> None:
    train, _ = digits_splits
    again = DigitsDataset(split="train")
    assert torch.equal(train.indices, again.indices)
    assert torch.equal(train.images, again.images)
    other_seed = DigitsDataset(split="train", seed=1)
    assert not torch.equal(train.indices, other_seed.indices)


def test_digits_native_size_is_the_raw_data() -> None:
    from sklearn.datasets import load_digits

    raw = load_digits()
    dataset = DigitsDataset(image_size=8, split="all", channels=1, return_labels=True)
    image, label = dataset[5]
    assert image.shape == (1, 8, 8)
    assert torch.allclose(image[0], torch.from_numpy(raw.images[5] / 16.0).float())
    assert label == raw.target[5]


def test_digits_items_are_copies(digits_splits: tuple[DigitsDataset, DigitsDataset]) -> None:
    train, _ = digits_splits
    before = train[0].clone()
    train[0].mul_(0)  # an in-place augmentation must not corrupt the dataset
    assert torch.equal(train[0], before)


def test_digits_options_and_validation() -> None:
    dataset = DigitsDataset(image_size=(16, 24), split="test", channels=1)
    assert dataset[0].shape == (1, 16, 24)
    with pytest.raises(ValueError, match="'validation'"):
        DigitsDataset(split="validation")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="image_size"):
        DigitsDataset(image_size=0)
    with pytest.raises(ValueError, match="test_fraction"):
        DigitsDataset(test_fraction=1.5)
