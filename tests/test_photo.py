"""Photos of any size (byol_pytorch/data/formats/photo.py, datasets/photos.py, datasets/base.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from byol_pytorch.data import (
    CroppedViews,
    CropsInLoader,
    ImageFolderDataset,
    LoaderCrops,
    PhotoDataset,
    PhotoTransform,
    TrainingStream,
    UnreadableImageError,
    UnreadableReports,
)
from byol_pytorch.sizes import CropSpec

from .photo_sources import hf_dataset, jpeg_bytes, photo

SPEC = CropSpec(size=(16, 16), scale=(0.5, 1.0), ratio=(0.75, 4 / 3), flip_p=0.5)


def test_photos_of_any_size_become_one_size_or_two_views() -> None:
    rows = hf_dataset(4)
    images = PhotoDataset(rows, PhotoTransform(24))
    assert {tuple(images[i].shape) for i in range(4)} == {(3, 24, 24)}  # from 48x36 and 36x48
    crops = LoaderCrops(CropSpec(size=(24, 24), scale=(0.5, 1.0), ratio=(0.75, 4 / 3), flip_p=0.5), seed=5)
    views = images.with_crops(crops)
    first, again = views[1], views[1]
    assert isinstance(first, CroppedViews) and first.view_1.dtype == torch.uint8
    assert torch.equal(first.view_1, again.view_1)  # drawn from (seed, epoch, index)
    views.set_epoch(1)
    assert not torch.equal(views[1].view_1, first.view_1)
    assert images.crops is None and views.crops is crops


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="on_unreadable must be 'next' or 'return_none', got 'skip'"):
        PhotoDataset([], PhotoTransform(8), on_unreadable="skip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="names has 1 entries for 2 items"):
        PhotoDataset([1, 2], PhotoTransform(8), names=["a"])
    with pytest.raises(ValueError, match=r"resize_ratio must be at least 1 .*got 0\.5"):
        PhotoTransform(8, resize_ratio=0.5)
    with pytest.raises(ValueError, match=r"the crops are \(16, 16\) but image_size is \(8, 8\)"):
        PhotoTransform(8, crops=LoaderCrops(SPEC))
    with pytest.raises(TypeError, match="crops must be a LoaderCrops or None, got CropSpec"):
        PhotoTransform(16, crops=SPEC)  # type: ignore[arg-type]


def test_a_path_and_its_bytes_give_the_same_image(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(photo(2)))
    transform = PhotoTransform(16, image_key=None)
    assert torch.equal(transform(str(path)), transform(path.read_bytes()))
    with pytest.raises(UnreadableImageError) as missing:
        transform(str(tmp_path / "gone.jpg"))
    # The reason leaves out the path, which the line reporting it names already.
    assert missing.value.reason.startswith("FileNotFoundError:") and "gone.jpg" not in missing.value.reason


def test_datasets_sharing_reports_name_an_unreadable_item_once(caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"image": jpeg_bytes(photo(0))}, {"image": b"\xff\xd8\xff broken"}, {"image": jpeg_bytes(photo(1))}]
    reports = UnreadableReports()
    names = ["a", "b", "c"]
    first = PhotoDataset(rows, PhotoTransform(8), names=names, reports=reports)
    second = PhotoDataset(rows, PhotoTransform(8), on_unreadable="return_none", names=names, reports=reports)
    with caplog.at_level(logging.WARNING, logger="byol_pytorch.data"):
        assert torch.equal(first[1], first[2])  # the next readable item
        assert second[1] is None
    lines = [r.getMessage() for r in caplog.records if r.name == "byol_pytorch.data"]
    assert len(lines) == 1 and lines[0].startswith("skipped unreadable image b: ")
    assert first.skipped_indices == second.skipped_indices == {1} and first.skipped_count == 1


def test_what_can_crop_views_in_the_loader_says_so(tmp_path: Path) -> None:
    photo(0).save(tmp_path / "a.png")
    crops = LoaderCrops(SPEC)
    folder, rows = ImageFolderDataset(tmp_path, 16), PhotoDataset(hf_dataset(2), PhotoTransform(16))
    stream, plain = TrainingStream([photo(0)], transform=PhotoTransform(16)), TrainingStream([photo(0)])
    for data in (folder, rows, stream, PhotoTransform(16)):
        assert isinstance(data, CropsInLoader) and data.takes_crops() and data.crops is None
        cropped = data.with_crops(crops)
        assert cropped.crops is crops and not cropped.takes_crops() and data.crops is None
    assert isinstance(folder.with_crops(crops)[0], CroppedViews)
    assert not plain.takes_crops() and plain.crops is None
    with pytest.raises(TypeError, match="loader crops need a transform that draws them"):
        plain.with_crops(crops)


def test_the_crops_keep_their_byol_pytorch_1_0_name_views(tmp_path: Path) -> None:
    photo(0).save(tmp_path / "a.png")
    crops = LoaderCrops(SPEC, seed=1)
    old, new = ImageFolderDataset(tmp_path, 16, views=crops), ImageFolderDataset(tmp_path, 16, crops=crops)
    assert old.views is old.crops is crops and torch.equal(old[0].view_1, new[0].view_1)
    assert PhotoTransform(16, views=crops).crops is crops
    assert ImageFolderDataset(tmp_path, 16).with_views(crops).crops is crops
    with pytest.raises(TypeError, match="pass the loader crops once"):
        PhotoTransform(16, crops=crops, views=crops)


def test_jpeg_bytes_travel_undecoded_for_the_device(tmp_path: Path) -> None:
    from byol_pytorch.data.views.crops import EncodedViews

    crops = LoaderCrops(SPEC, encoded_jpegs=True)
    item = PhotoTransform(16, views=crops)({"image": {"bytes": jpeg_bytes(photo(0)), "path": None}}, index=0)
    assert isinstance(item, EncodedViews) and bytes(item.data.numpy()) == jpeg_bytes(photo(0))
    assert item.boxes.shape == (2, 5)
    # What is not a JPEG is cropped in the worker as usual.
    png = tmp_path / "a.png"
    photo(1).save(png)
    assert isinstance(PhotoTransform(16, views=crops)({"image": png.read_bytes()}), CroppedViews)
