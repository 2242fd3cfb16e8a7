"""Tar shards (byol_pytorch/data/streams/shards.py) and photos of any size (byol_pytorch/data/formats/photo.py, datasets/photos.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from byol_pytorch.data import LoaderCrops
from byol_pytorch.data import CroppedViews
from byol_pytorch.data import PhotoDataset, PhotoTransform
from byol_pytorch.data.streams.shards import ShardIndex, expand_shards, looks_like_shards, shard_samples
from byol_pytorch.model.augment import CropSpec

from .photo_sources import hf_dataset, jpeg_bytes, label, photo, write_shards


def test_brace_patterns_name_the_shards(tmp_path: Path) -> None:
    pattern = write_shards(tmp_path, 3, 2)
    assert expand_shards(pattern) == [str(tmp_path / f"train-{i:06d}.tar") for i in range(3)]
    assert looks_like_shards(pattern) and looks_like_shards("a.tar::b-{0..3}.tar")
    assert not looks_like_shards(str(tmp_path)) and not looks_like_shards("data.parquet")


def test_samples_keep_the_image_and_label_and_ignore_the_rest(tmp_path: Path) -> None:
    pattern = write_shards(tmp_path, 1, 3, extension="webp")
    samples = list(shard_samples(expand_shards(pattern)[0]))
    assert [s["__key__"].rsplit(":", 1)[1] for s in samples] == ["000000", "000001", "000002"]
    assert set(samples[0]) == {"__key__", "image", "label"} and samples[2]["label"] == b"2"


def test_the_index_reads_every_sample_by_index(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pattern = write_shards(tmp_path, 2, 3, broken=(4,))
    index = ShardIndex(expand_shards(pattern))
    assert len(index) == 6 and index.has_labels()
    assert index[1]["image"] == jpeg_bytes(photo(1)) and index[5]["label"] == str(label(5)).encode()
    images = PhotoDataset(index, PhotoTransform(16, label_key="label"), on_unreadable="return_none", names=index.keys)
    with caplog.at_level(logging.WARNING, logger="byol_pytorch.data"):
        items = [images[i] for i in range(6)] + [images[4]]
    assert items[4] is None and items[6] is None and images.skipped_indices == {4}
    assert [item[1] for item in items if item is not None] == [label(i) for i in (0, 1, 2, 3, 5)]
    # Reported once, by name, without PIL's in-memory file object.
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "train-000001.tar:000004" in lines[0] and "BytesIO" not in lines[0]


def test_photos_of_any_size_become_one_size_or_two_views() -> None:
    rows = hf_dataset(4)
    images = PhotoDataset(rows, PhotoTransform(24))
    assert {tuple(images[i].shape) for i in range(4)} == {(3, 24, 24)}  # from 48x36 and 36x48
    crops = LoaderCrops(CropSpec(size=(24, 24), scale=(0.5, 1.0), ratio=(0.75, 4 / 3), flip_p=0.5), seed=5)
    views = images.with_views(crops)
    first, again = views[1], views[1]
    assert isinstance(first, CroppedViews) and first.view_1.dtype == torch.uint8
    assert torch.equal(first.view_1, again.view_1)  # drawn from (seed, epoch, index)
    views.set_epoch(1)
    assert not torch.equal(views[1].view_1, first.view_1)
    assert images.views is None and views.views is crops


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="on_unreadable must be 'next' or 'return_none', got 'skip'"):
        PhotoDataset([], PhotoTransform(8), on_unreadable="skip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="names has 1 entries for 2 items"):
        PhotoDataset([1, 2], PhotoTransform(8), names=["a"])
    with pytest.raises(FileNotFoundError, match="missing.tar"):
        ShardIndex(["missing.tar"])


def test_jpeg_bytes_travel_undecoded_for_the_device(tmp_path: Path) -> None:
    from byol_pytorch.data.views.crops import EncodedViews

    crops = LoaderCrops(CropSpec(size=(16, 16), scale=(0.5, 1.0), ratio=(0.75, 4 / 3), flip_p=0.5), encoded_jpegs=True)
    item = PhotoTransform(16, views=crops)({"image": {"bytes": jpeg_bytes(photo(0)), "path": None}}, index=0)
    assert isinstance(item, EncodedViews) and bytes(item.data.numpy()) == jpeg_bytes(photo(0))
    assert item.boxes.shape == (2, 5)
    # What is not a JPEG is cropped in the worker as usual.
    png = tmp_path / "a.png"
    photo(1).save(png)
    assert isinstance(PhotoTransform(16, views=crops)({"image": png.read_bytes()}), CroppedViews)
