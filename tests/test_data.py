"""Tests for byol_pytorch.data: item conversion, batching and the datasets."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from byol_pytorch.data import (
    IMAGE_EXTENSIONS,
    DigitsDataset,
    ImageFolderDataset,
    MockDataset,
    UnreadableReports,
    collate_images,
    to_image_tensor,
)

from .conftest import write_digit_folder


def _rgb_image(width: int, height: int, color: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (width, height), color)


def _noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


REPO = Path(__file__).resolve().parents[1]


def _skip_lines(caplog: pytest.LogCaptureFixture, name: str = "") -> list[str]:
    """The reports of unreadable files (about ``name``) that this process logged."""
    return [r.getMessage() for r in caplog.records
            if r.name == "byol_pytorch.data" and name in r.getMessage()]


# --------------------------------------------------------------------------- #
# to_image_tensor
# --------------------------------------------------------------------------- #


def test_uint8_tensor_is_scaled_exactly() -> None:
    values = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16)
    image = to_image_tensor(values)
    assert image.dtype == torch.float32
    assert image.shape == (1, 16, 16)
    assert torch.equal(image, values.to(torch.float32) / 255.0)
    assert image.min() == 0.0 and image.max() == 1.0


def test_float_tensor_is_kept_as_is() -> None:
    values = torch.rand(3, 5, 7)
    assert torch.equal(to_image_tensor(values), values)
    as_double = to_image_tensor(values.double())
    assert as_double.dtype == torch.float32
    assert torch.allclose(as_double, values)


def test_two_dimensional_tensor_gets_a_channel() -> None:
    image = to_image_tensor(torch.rand(6, 4))
    assert image.shape == (1, 6, 4)


def test_float_tensor_outside_unit_range_warns() -> None:
    with pytest.warns(UserWarning, match=r"expected \[0, 1\]"):
        image = to_image_tensor(torch.full((3, 4, 4), 200.0))
    assert image.max() == 200.0  # warned, not rescaled


def test_channels_last_tensor_warns() -> None:
    with pytest.warns(UserWarning, match="channels-last"):
        to_image_tensor(torch.rand(8, 8, 3))


@pytest.mark.parametrize(
    ("mode", "channels"),
    [("L", 1), ("RGB", 3), ("RGBA", 4), ("P", 3), ("LA", 3), ("CMYK", 3), ("1", 3)],
)
def test_pil_modes(mode: str, channels: int) -> None:
    image = _noise_image(9, 5).convert(mode)
    tensor = to_image_tensor(image)
    assert tensor.dtype == torch.float32
    assert tensor.shape == (channels, 5, 9)
    assert 0.0 <= tensor.min() and tensor.max() <= 1.0


def test_pil_values_are_exact() -> None:
    pil = _noise_image(9, 5)
    expected = torch.from_numpy(np.array(pil)).permute(2, 0, 1).float() / 255.0
    assert torch.equal(to_image_tensor(pil), expected)
    gray = pil.convert("L")
    assert torch.equal(to_image_tensor(gray)[0], torch.from_numpy(np.array(gray)).float() / 255.0)


def test_palette_with_transparency_becomes_rgb_without_warning() -> None:
    pil = _noise_image(6, 6).convert("P")
    pil.info["transparency"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = to_image_tensor(pil)
    assert tensor.shape == (3, 6, 6)


def test_sixteen_bit_pil_image_is_not_clipped() -> None:
    values = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    tensor = to_image_tensor(Image.fromarray(values))
    assert tensor.shape == (1, 2, 2)
    assert torch.allclose(tensor[0], torch.from_numpy(values.astype(np.float32) / 65535.0))


def test_numpy_arrays() -> None:
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    image = to_image_tensor(hwc)
    assert image.shape == (3, 5, 7) and image.dtype == torch.float32
    assert torch.equal(image, torch.from_numpy(hwc).permute(2, 0, 1).float() / 255.0)

    hw = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    assert torch.equal(to_image_tensor(hw), torch.from_numpy(hw).float().unsqueeze(0) / 255.0)

    as_float = rng.random((5, 7, 1))
    image = to_image_tensor(as_float)
    assert image.shape == (1, 5, 7) and image.dtype == torch.float32
    assert torch.allclose(image[0], torch.from_numpy(as_float[:, :, 0]).float())


def test_numpy_result_does_not_alias_the_array() -> None:
    array = np.zeros((4, 4, 3), dtype=np.float32)
    image = to_image_tensor(array)
    image += 0.5
    assert array.max() == 0.0


@pytest.mark.parametrize("container", [tuple, list])
def test_label_is_dropped(container: type) -> None:
    image = torch.rand(3, 4, 4)
    assert torch.equal(to_image_tensor(container([image, 7])), image)
    assert torch.equal(to_image_tensor(container([image, "cat"])), image)


# A dict is an item kind of its own (tests/test_items.py): one without an image names its keys.
@pytest.mark.parametrize(("item", "type_name"), [("image.png", "str"), (3, "int"), ({1, 2}, "set")])
def test_unsupported_type_is_named(item: object, type_name: str) -> None:
    with pytest.raises(TypeError, match=type_name):
        to_image_tensor(item)


def test_unsupported_dtype_and_rank() -> None:
    with pytest.raises(TypeError, match="int64"):
        to_image_tensor(torch.zeros(3, 4, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match="int32"):
        to_image_tensor(np.zeros((4, 4), dtype=np.int32))
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 4\)"):
        to_image_tensor(torch.rand(2, 3, 4, 4))


# --------------------------------------------------------------------------- #
# collate_images
# --------------------------------------------------------------------------- #


def test_collate_mixed_items() -> None:
    items = [
        torch.rand(3, 8, 8),
        (torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8), 1),
        _noise_image(8, 8),
        np.zeros((8, 8, 3), dtype=np.uint8),
    ]
    batch = collate_images(items)
    assert batch.shape == (4, 3, 8, 8)
    assert batch.dtype == torch.float32


def test_collate_mismatched_shapes_names_them() -> None:
    items = [torch.rand(3, 8, 8), torch.rand(3, 9, 9), torch.rand(3, 8, 8)]
    with pytest.raises(ValueError) as info:
        collate_images(items)
    message = str(info.value)
    assert "(3, 8, 8)" in message and "(3, 9, 9)" in message
    assert "one size" in message and "ImageFolderDataset" in message


def test_collate_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        collate_images([])


# --------------------------------------------------------------------------- #
# MockDataset
# --------------------------------------------------------------------------- #


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


# --------------------------------------------------------------------------- #
# ImageFolderDataset
# --------------------------------------------------------------------------- #


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    (tmp_path / "cats" / "nested").mkdir(parents=True)
    (tmp_path / "dogs").mkdir()
    _rgb_image(30, 20, (255, 0, 0)).save(tmp_path / "cats" / "a.png")
    _noise_image(25, 25).save(tmp_path / "cats" / "nested" / "b.JPG", quality=90)
    _noise_image(12, 40).convert("L").save(tmp_path / "dogs" / "c.jpeg")
    _noise_image(18, 18).convert("RGBA").save(tmp_path / "dogs" / "d.png")
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    return tmp_path


def test_folder_found_recursively_and_resized(image_tree: Path) -> None:
    dataset = ImageFolderDataset(image_tree, image_size=16)
    names = [Path(f).name for f in dataset.files]
    assert names == ["a.png", "b.JPG", "c.jpeg", "d.png"]
    assert len(dataset) == 4
    for index in range(len(dataset)):
        item = dataset[index]
        assert item.shape == (3, 16, 16) and item.dtype == torch.float32
        assert 0.0 <= item.min() and item.max() <= 1.0
    assert dataset.skipped_count == 0
    # A solid colour survives resizing unchanged.
    assert torch.allclose(dataset[0][0], torch.ones(16, 16), atol=1e-5)
    assert torch.allclose(dataset[0][1:], torch.zeros(2, 16, 16), atol=1e-5)


def test_folder_rectangular_size(image_tree: Path) -> None:
    dataset = ImageFolderDataset(image_tree, image_size=(12, 20))
    assert dataset[2].shape == (3, 12, 20)
    assert collate_images([dataset[i] for i in range(len(dataset))]).shape == (4, 3, 12, 20)


def test_folder_center_crop_keeps_the_middle(tmp_path: Path) -> None:
    # 60 wide x 20 tall: blue outer thirds, red middle third. Resizing the
    # shorter side to 10 and cropping 10x10 from the centre keeps the red part.
    array = np.zeros((20, 60, 3), dtype=np.uint8)
    array[:, :, 2] = 255
    array[:, 20:40] = (255, 0, 0)
    Image.fromarray(array).save(tmp_path / "wide.png")
    item = ImageFolderDataset(tmp_path, image_size=10)[0]
    assert item.shape == (3, 10, 10)
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 10, 6)
    assert torch.allclose(item[:, :, 2:8], red, atol=1e-5)


def test_folder_labels_from_sub_folders(image_tree: Path) -> None:
    dataset = ImageFolderDataset(image_tree, image_size=8, return_labels=True)
    assert dataset.classes == ["cats", "dogs"]
    assert dataset.labels is not None and dataset.labels.tolist() == [0, 0, 1, 1]
    image, label = dataset[3]
    assert image.shape == (3, 8, 8) and label == 1
    loader = DataLoader(dataset, batch_size=4, collate_fn=collate_images)
    assert next(iter(loader)).shape == (4, 3, 8, 8)


def test_folder_labels_reject_files_at_root(image_tree: Path) -> None:
    _rgb_image(8, 8, (0, 0, 0)).save(image_tree / "loose.png")
    with pytest.raises(ValueError, match="loose.png"):
        ImageFolderDataset(image_tree, image_size=8, return_labels=True)
    assert len(ImageFolderDataset(image_tree, image_size=8)) == 5


def test_folder_extensions_filter(image_tree: Path) -> None:
    dataset = ImageFolderDataset(image_tree, image_size=8, extensions=["png"])
    assert [Path(f).name for f in dataset.files] == ["a.png", "d.png"]
    assert ".gif" in IMAGE_EXTENSIONS and ".tiff" in IMAGE_EXTENSIONS


def test_folder_construction_does_not_decode(
    image_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was decoded during __init__")

    monkeypatch.setattr(Image, "open", refuse)
    assert len(ImageFolderDataset(image_tree, image_size=8)) == 4


def test_folder_empty_and_missing(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError) as info:
        ImageFolderDataset(tmp_path / "empty", image_size=8)
    assert str(tmp_path / "empty") in str(info.value)
    assert ".png" in str(info.value) and ".jpg" in str(info.value)

    missing = tmp_path / "does_not_exist"
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        ImageFolderDataset(missing, image_size=8)


def test_folder_validates_image_size(image_tree: Path) -> None:
    with pytest.raises(ValueError, match="image_size"):
        ImageFolderDataset(image_tree, image_size=0)


@pytest.fixture
def folder_with_corrupt_files(tmp_path: Path) -> Path:
    _rgb_image(10, 10, (255, 0, 0)).save(tmp_path / "a_good.png")
    buffer = io.BytesIO()
    _noise_image(64, 64).save(buffer, format="JPEG", quality=95)
    (tmp_path / "b_truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    _rgb_image(10, 10, (0, 255, 0)).save(tmp_path / "c_good.png")
    (tmp_path / "x.png").write_bytes(np.random.default_rng(0).bytes(300))
    return tmp_path


def test_corrupt_files_are_skipped_with_one_line_each(folder_with_corrupt_files: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    root = folder_with_corrupt_files
    # The truncated file opens, but decoding it must fail.
    with pytest.raises(OSError), Image.open(root / "b_truncated.jpg") as broken:
        broken.load()

    dataset = ImageFolderDataset(root, image_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported on the log, never as a warning
        first_pass = [dataset[i] for i in range(len(dataset))]
        second_pass = [dataset[i] for i in range(len(dataset))]

    truncated = str(root / "b_truncated.jpg")
    assert _skip_lines(caplog, "b_truncated.jpg") == [
        f"skipped unreadable image {truncated}: OSError: image file is truncated (1 bytes not processed)"
    ]
    assert len(_skip_lines(caplog, "x.png")) == 1 and len(_skip_lines(caplog)) == 2
    assert dataset.skipped_count == 2
    assert dataset.skipped_files == {truncated, str(root / "x.png")}
    for item in first_pass + second_pass:
        assert item.shape == (3, 8, 8)
    # A skipped index yields the next readable file, wrapping at the end.
    assert torch.equal(first_pass[1], first_pass[2])  # truncated -> c_good
    assert torch.equal(first_pass[3], first_pass[0])  # x.png -> a_good
    assert first_pass[2][1].mean() > 0.99  # c_good is green
    assert collate_images(first_pass).shape == (4, 3, 8, 8)

    # A dataset of its own reports the file again; one sharing the first's reports records it silently.
    caplog.clear()
    again = ImageFolderDataset(root, image_size=8)
    again[1]
    assert len(_skip_lines(caplog)) == 1 and again.skipped_count == 1
    caplog.clear()
    shared = ImageFolderDataset(root, image_size=8, reports=again._reports)
    shared[1]
    assert not _skip_lines(caplog) and shared.skipped_count == 1
    # Sent to a spawned worker, the reports keep what was reported (weak references do not pickle).
    assert pickle.loads(pickle.dumps(again._reports))._reported == {truncated}


def test_unreadable_files_can_be_left_out(folder_with_corrupt_files: Path) -> None:
    dataset = ImageFolderDataset(folder_with_corrupt_files, image_size=8, on_unreadable="return_none")
    items = [dataset[i] for i in range(len(dataset))]
    assert [item is None for item in items] == [False, True, False, True]
    assert dataset[1] is None and dataset.skipped_count == 2
    with pytest.raises(ValueError, match=r"got None for 2 of 4 items.*on_unreadable='next'"):
        collate_images(items)
    with pytest.raises(ValueError, match=r"on_unreadable must be 'next' or 'return_none', got 'skip'"):
        ImageFolderDataset(folder_with_corrupt_files, image_size=8, on_unreadable="skip")  # type: ignore[arg-type]


def test_a_second_dataset_does_not_repeat_what_workers_reported(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    _, broken = write_digit_folder(tmp_path)
    reports = UnreadableReports()
    training = ImageFolderDataset(tmp_path, 8, reports=reports)
    assert sum(len(batch) for batch in DataLoader(training, batch_size=3, num_workers=2,
                                                  collate_fn=collate_images)) == 15
    assert training.skipped_files == {str(p) for p in broken}  # met by the workers, counted here
    # The command line's evaluation copy of the same folder, read in this process.
    evaluation = ImageFolderDataset(tmp_path, 8, return_labels=True, on_unreadable="return_none", reports=reports)
    assert sum(evaluation[i] is None for i in range(len(evaluation))) == 3 == evaluation.skipped_count
    assert not _skip_lines(caplog)


def test_corrupt_file_with_labels_returns_the_substitute_label(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "broken.png").write_bytes(b"definitely not a png")
    _rgb_image(9, 9, (0, 0, 255)).save(tmp_path / "b" / "fine.png")
    dataset = ImageFolderDataset(tmp_path, image_size=4, return_labels=True)
    image, label = dataset[0]
    assert label == 1 and image.shape == (3, 4, 4)
    assert len(_skip_lines(caplog, "broken.png")) == 1


def test_all_files_unreadable_raises(tmp_path: Path) -> None:
    (tmp_path / "one.png").write_bytes(b"junk")
    (tmp_path / "two.jpg").write_bytes(b"")
    dataset = ImageFolderDataset(tmp_path, image_size=4)
    with pytest.raises(RuntimeError, match="none of the 2"):
        dataset[0]
    assert dataset.skipped_count == 2


# Two epochs of a shuffled training loader, as the trainer reads a folder; the
# parent test reads what this prints on stdout and stderr.
_READ_TWICE = """
import json
import sys
from torch.utils.data import DataLoader
from byol_pytorch.data import ImageFolderDataset, collate_images

if __name__ == "__main__":  # spawned workers import this file again
    root, workers, context = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    dataset = ImageFolderDataset(root, 8)
    # Fresh forked workers every epoch; spawned ones (seconds each to start) are kept.
    loader = DataLoader(dataset, batch_size=3, shuffle=True, collate_fn=collate_images, num_workers=workers,
                        multiprocessing_context=context if workers else None,
                        persistent_workers=context == "spawn")
    batches = [len(batch) for _ in range(2) for batch in loader]
    print(json.dumps({"count": dataset.skipped_count, "files": sorted(dataset.skipped_files), "batches": batches}))
"""


@pytest.mark.parametrize(("workers", "context"),
                         [(0, "none"), (2, "fork"), (2, "spawn")])
def test_unreadable_files_are_counted_and_reported_once_across_workers(tmp_path: Path, workers: int,
                                                                       context: str) -> None:
    readable, broken = write_digit_folder(tmp_path / "digits")
    assert all(Image.open(p).load() is not None for p in readable)
    script = tmp_path / "read_twice.py"
    script.write_text(_READ_TWICE)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "digits"), str(workers), context],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["count"] == 3 and seen["files"] == sorted(str(p) for p in broken)
    assert seen["batches"] == [3] * 10  # 15 files in batches of 3, two epochs: every batch full
    lines = result.stderr.splitlines()
    assert len(lines) == 3, result.stderr  # one per broken file, over two epochs and two workers
    for path, line in zip(sorted(broken), sorted(lines)):
        assert line.startswith(f"skipped unreadable image {path}: "), line
    assert "Warning" not in result.stderr and "fetch.py" not in result.stderr


# --------------------------------------------------------------------------- #
# DigitsDataset
# --------------------------------------------------------------------------- #


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


def test_folder_errors_that_mean_bad_input_have_their_own_types(tmp_path: Path) -> None:
    from byol_pytorch.errors import MissingClassFolderError, NoImagesError

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(NoImagesError, match="no image files found under"):
        ImageFolderDataset(tmp_path / "empty", 16)
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (20, 20)).save(flat / "a.png")
    Image.new("RGB", (20, 20)).save(flat / "b.png")
    assert len(ImageFolderDataset(flat, 16)) == 2  # fine without labels
    with pytest.raises(MissingClassFolderError, match="2 file\\(s\\) lie directly in it") as caught:
        ImageFolderDataset(flat, 16, return_labels=True)
    assert sorted(Path(f).name for f in caught.value.files) == ["a.png", "b.png"]
