"""Tar shards (byol_pytorch/data/streams/shards.py): names, samples, and the index evaluation reads by."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from byol_pytorch.data import PhotoDataset, PhotoTransform
from byol_pytorch.data.streams.shards import ShardIndex, expand_shards, looks_like_shards, shard_samples

from .photo_sources import jpeg_bytes, label, photo, write_shards


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


def test_a_missing_shard_is_named() -> None:
    with pytest.raises(FileNotFoundError, match="missing.tar"):
        ShardIndex(["missing.tar"])
