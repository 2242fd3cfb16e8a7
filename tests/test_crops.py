"""Loader-side crops (byol_pytorch/data/views/crops.py): the paper's crops from the whole photo, as uint8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from byol_pytorch import BYOL, CropSpec, ImageFolderDataset, LoaderCrops
from byol_pytorch.data import CroppedViews, collate_views
from byol_pytorch.data.views.crops import sample_crop
from byol_pytorch.data.formats.decode import draft_for

GREEN, RED = (0, 255, 0), (255, 0, 0)


def _framed_photo(folder: Path, width: int = 80, height: int = 60) -> Path:
    """A 4:3 image whose outer ten columns on each side are green; green is found nowhere else."""
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[:] = RED
    array[:, :10] = GREEN
    array[:, -10:] = GREEN
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(folder / "framed.png")
    return folder


def _has_green(image: torch.Tensor) -> bool:
    pixels = image.float() / (255.0 if image.dtype == torch.uint8 else 1.0)
    return bool(((pixels[1] > 0.9) & (pixels[0] < 0.1)).any())


def _training(folder: Path, size: int = 16, seed: int = 0) -> ImageFolderDataset:
    return ImageFolderDataset(folder, size, crops=LoaderCrops(CropSpec.paper(size), seed=seed))


def test_training_views_reach_the_borders_that_centre_cropping_never_sees(tmp_path: Path) -> None:
    folder = _framed_photo(tmp_path / "photos")
    training = _training(folder)
    seen = []
    for epoch in range(20):
        training.set_epoch(epoch)
        views = training[0]
        seen += [_has_green(views.view_1), _has_green(views.view_2)]
    assert any(seen) and not all(seen)
    # The evaluation transform (the former training path) only ever shows the centre.
    assert not _has_green(ImageFolderDataset(folder, 16)[0])


@pytest.mark.parametrize("scale", [(0.08, 1.0), (0.2, 1.0), (0.3, 0.5)])
def test_crop_area_follows_the_configured_range(scale: tuple[float, float]) -> None:
    spec = CropSpec((16, 16), scale)
    height, width = 375, 500
    fractions, aspects = [], []
    for index in range(2000):
        box = sample_crop(height, width, spec, np.random.default_rng((0, 0, index)))
        assert 0 <= box.top and box.top + box.height <= height and 0 <= box.left and box.left + box.width <= width
        fractions.append(box.height * box.width / (height * width))
        aspects.append(box.width / box.height)
    fractions = np.array(fractions)
    # Rounding the sides to whole pixels moves the area by well under 1%.
    assert fractions.min() >= scale[0] * 0.98 and fractions.max() <= scale[1] * 1.02
    assert fractions.min() < scale[0] + 0.05 and fractions.max() > scale[1] - 0.05
    if scale[1] <= 0.5:  # every draw fits inside the image: the area is uniform in the range
        assert abs(np.median(fractions) - sum(scale) / 2) < 0.02
    assert min(aspects) >= 0.74 and max(aspects) <= 1.35


def test_views_are_uint8_drawn_per_view_per_image_and_reproducible(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tmp_path.mkdir(exist_ok=True)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (30 + i, 40, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    training = _training(tmp_path, size=12)
    batch = collate_views([training[i] for i in range(4)])
    assert isinstance(batch, CroppedViews)
    assert batch.view_1.dtype == batch.view_2.dtype == torch.uint8
    assert batch.view_1.shape == batch.view_2.shape == (4, 3, 12, 12)
    assert not torch.equal(batch.view_1, batch.view_2)
    # The same seed, epoch and index give the same crops, in workers or not; a new epoch new ones.
    loader = DataLoader(training, batch_size=4, collate_fn=collate_views, num_workers=2)
    again = next(iter(loader))
    assert torch.equal(again.view_1, batch.view_1) and torch.equal(again.view_2, batch.view_2)
    training.set_epoch(1)
    assert not torch.equal(next(iter(loader)).view_1, batch.view_1)


def _formats(folder: Path) -> None:
    folder.mkdir()
    rgb = np.zeros((30, 40, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(folder / "rgb.jpg", quality=95)
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(rgb).convert("P").save(folder / "palette.png")
    Image.fromarray(np.dstack([rgb, np.full((30, 40), 7, np.uint8)])).save(folder / "alpha.png")
    Image.fromarray(np.full((30, 40), 120, np.uint8)).save(folder / "gray.png")
    Image.fromarray(np.full((30, 40), 40000, np.uint16)).save(folder / "sixteen.png")
    rotated = Image.fromarray(rgb)
    exif = rotated.getexif()
    exif[0x0112] = 6  # shown turned by 90 degrees
    rotated.save(folder / "exif.jpg", exif=exif)


def test_every_format_the_folder_reads_gives_rgb_uint8_views(tmp_path: Path) -> None:
    _formats(tmp_path / "formats")
    training = _training(tmp_path / "formats", size=8)
    by_name = {Path(path).name: training[i] for i, path in enumerate(training.files)}
    for name, views in by_name.items():
        for view in views:
            assert view.shape == (3, 8, 8) and view.dtype == torch.uint8, name
    assert int(by_name["sixteen.png"].view_1.float().mean().round()) == round(40000 * 255 / 65535)
    assert by_name["gray.png"].view_1.unique().tolist() == [120]
    assert by_name["alpha.png"].view_1[0].float().mean() > 190  # alpha dropped, colour kept
    evaluation = ImageFolderDataset(tmp_path / "formats", 8)
    assert all(evaluation[i].shape == (3, 8, 8) for i in range(len(evaluation)))


def test_exif_rotation_is_applied_before_cropping(tmp_path: Path) -> None:
    # Stored 40 wide x 10 tall with orientation 6: upright it is 10 wide x 40 tall.
    array = np.zeros((10, 40, 3), dtype=np.uint8)
    array[:, :20] = GREEN
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6
    tmp_path.mkdir(exist_ok=True)
    image.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    crops = LoaderCrops(CropSpec((8, 8), (0.99, 1.0), ratio=(0.25, 0.25), flip_p=0.0))
    with Image.open(tmp_path / "turned.jpg") as opened:
        view = crops(opened, 0, 0).view_1
    # Upright, the green half is the top (or bottom) half: rows differ, columns do not.
    rows = view[1].float().mean(dim=1)
    assert rows.max() - rows.min() > 100
    assert (view[1].float().std(dim=1) < 30).all()


def test_large_jpegs_are_decoded_at_reduced_size(tmp_path: Path) -> None:
    Image.new("RGB", (800, 600), (10, 20, 30)).save(tmp_path / "big.jpg")
    with Image.open(tmp_path / "big.jpg") as image:
        draft_for(image, 4.5)
        assert image.size == (200, 150)
    with Image.open(tmp_path / "big.jpg") as image:
        draft_for(image, 1.5)
        assert image.size == (800, 600)


def test_broken_files_are_skipped_and_counted_with_crops(tmp_path: Path) -> None:
    _framed_photo(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    training = _training(tmp_path)
    assert isinstance(training[0], CroppedViews) and isinstance(training[1], CroppedViews)
    assert training.skipped_count == 1


def test_with_crops_shares_files_and_the_unreadable_mask(tmp_path: Path) -> None:
    _framed_photo(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"nope")
    evaluation = ImageFolderDataset(tmp_path, 16)
    training = evaluation.with_crops(LoaderCrops(CropSpec.paper(16)))
    assert evaluation.crops is None and isinstance(training[0], CroppedViews)
    assert evaluation.skipped_count == 1
    with pytest.raises(ValueError, match=r"the crops are \(8, 8\) but image_size is \(16, 16\)"):
        evaluation.with_crops(LoaderCrops(CropSpec.paper(8)))


def test_the_module_takes_loader_views_and_keeps_its_tensor_api() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    learner = BYOL(net, 16, hidden_layer=-1, projection_size=8, projection_hidden_size=16)
    assert learner.crop_spec == CropSpec((16, 16), (0.2, 1.0))
    views = (torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8),
             torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8))
    assert torch.isfinite(learner(views=views))
    # Float views are the caller's: the colour works on a copy of them (uint8 ones become our own floats).
    floats = tuple(v.float() / 255 for v in views)
    kept = tuple(v.clone() for v in floats)
    assert torch.isfinite(learner(views=floats)) and all(torch.equal(a, b) for a, b in zip(floats, kept))
    # The tensor API: both views drawn on the device from any size of image, same kind of views.
    images = torch.rand(4, 3, 24, 30)
    view = learner.augment1(images)
    assert view.shape == (4, 3, 16, 16) and view.dtype == torch.float32 and 0 <= view.min() and view.max() <= 1
    assert torch.isfinite(learner(images))
    with pytest.raises(ValueError, match=r"both views must have shape \(B, C, 16, 16\)"):
        learner(views=(views[0][..., :8], views[1]))
    custom = BYOL(net, 16, hidden_layer=-1, projection_size=8, projection_hidden_size=16, augment_fn=lambda x: x)
    with pytest.raises(ValueError, match="augment_fn"):
        custom(views=views)


def test_photometric_part_is_drawn_per_image() -> None:
    learner_views = BYOL(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                                             torch.nn.Flatten()), 16, hidden_layer=-1)
    same = torch.full((8, 3, 16, 16), 0.5).index_put_((torch.arange(8),), torch.rand(3, 16, 16))
    out = learner_views.augment1.photometric(same.clone())
    assert out.shape == same.shape
    assert len({tuple(o.flatten()[:20].tolist()) for o in out}) > 1


@pytest.mark.parametrize("orientation", [1, 6])
def test_jpegs_decoded_at_reduced_size_never_lose_a_crop_to_rounding(tmp_path: Path, orientation: int) -> None:
    # A draft rounds each side up on its own (451x300 at 1/2 is 226x150): a crop at the far edge
    # scaled by one axis's ratio overran the other and the photo was skipped as unreadable.
    rng = np.random.default_rng(0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    for width, height in [(451, 300), (300, 451), (1001, 667), (641, 427)]:
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{width}x{height}.jpg", exif=exif)
    dataset = _training(tmp_path, size=32)
    for epoch in range(8):
        dataset.set_epoch(epoch)
        assert all(isinstance(dataset[i], CroppedViews) for i in range(len(dataset)))
    assert dataset.skipped_count == 0


def test_a_shared_mask_twin_still_names_each_broken_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    script = ("import sys; from byol_pytorch import ImageFolderDataset, LoaderCrops, CropSpec;"
              f"user = ImageFolderDataset({str(tmp_path)!r}, 16);"  # kept alive, as the trainer keeps it
              "d = user.with_crops(LoaderCrops(CropSpec.paper(16), seed=0));"
              "[d[i] for i in range(len(d))]; print(d.skipped_count)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "1"
    assert result.stderr.count("skipped unreadable image") == 1 and "broken.jpg" in result.stderr
