"""Every image under a folder (byol_pytorch/data/datasets/folder.py, on DecodedDataset of base.py)."""

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

from byol_pytorch.data import IMAGE_EXTENSIONS, ImageFolderDataset, UnreadableReports, collate_images

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
