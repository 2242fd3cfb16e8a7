"""Batched device decoding of JPEGs (byol_pytorch/data/views/gpu_decode.py); on CPU here, on CUDA where there is one."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from byol_pytorch import CropSpec, ImageFolderDataset, LoaderCrops
from byol_pytorch.data import CroppedViews, collate_views
from byol_pytorch.data.views.crops import EncodedViews
from byol_pytorch.data.views.gpu_decode import EncodedBatch, collate_encoded, decode_views

DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])]


def _smooth_photos(folder: Path, count: int = 4) -> Path:
    folder.mkdir()
    y, x = np.mgrid[0:60, 0:80]
    for i in range(count - 1):
        array = np.stack([x * 3 + i * 10, y * 4, (x + y) * 2], axis=-1).clip(0, 255).astype(np.uint8)
        Image.fromarray(array).save(folder / f"{i}.jpg", quality=95)
    Image.fromarray(np.full((60, 80, 3), 90, np.uint8)).save(folder / f"{count - 1}.png")  # not a JPEG: the worker crops
    return folder


@pytest.mark.parametrize("device", DEVICES)
def test_device_decoding_gives_the_workers_views(tmp_path: Path, device: str) -> None:
    folder = _smooth_photos(tmp_path / "photos")
    spec = CropSpec.paper(16)
    on_cpu = ImageFolderDataset(folder, 16, crops=LoaderCrops(spec, seed=3))
    encoded = ImageFolderDataset(folder, 16, crops=LoaderCrops(spec, seed=3, encoded_jpegs=True))
    items = [encoded[i] for i in range(4)]
    assert [type(item) for item in items] == [EncodedViews] * 3 + [CroppedViews]
    views = decode_views(collate_encoded(items), (16, 16), device)
    expected = collate_views([on_cpu[i] for i in range(4)])
    for got, want in zip(views, expected):
        assert got.dtype == torch.uint8 and got.device.type == device and got.shape == (4, 3, 16, 16)
        # Same crops; the resamplers differ (PIL in the worker, torch here) by a few grey levels.
        assert (got.cpu().float() - want.float()).abs().mean() < 6


def test_a_file_that_fails_to_decode_takes_another_images_views(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    folder = _smooth_photos(tmp_path / "photos")
    encoded = ImageFolderDataset(folder, 16, crops=LoaderCrops(CropSpec.paper(16), encoded_jpegs=True))
    items = [encoded[i] for i in range(3)]
    intact = decode_views(collate_encoded(items), (16, 16), "cpu")
    items[1] = EncodedViews(items[1].data[:200], items[1].boxes)  # truncated after the header
    with caplog.at_level(logging.WARNING, logger="byol_pytorch.data.views.gpu_decode"):
        views = decode_views(collate_encoded(items), (16, 16), "cpu")
    for view, whole in zip(views, intact):
        assert view.shape == (3, 3, 16, 16)
        # The others decode as they would have; the broken one takes the views of the first that decoded.
        assert torch.equal(view[0], whole[0]) and torch.equal(view[2], whole[2])
        assert torch.equal(view[1], view[0]) and not torch.equal(whole[1], whole[0])
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


@pytest.mark.parametrize("device", DEVICES)
def test_the_trainer_decodes_jpegs_on_the_device(tmp_path: Path, device: str) -> None:
    from accelerate.state import AcceleratorState

    from byol_pytorch import BYOLTrainer

    from .conftest import tiny_cnn

    folder = _smooth_photos(tmp_path / "photos", count=8)
    losses = {}
    for gpu_decode in (True, False):
        AcceleratorState._reset_state(reset_partial_state=True)
        torch.manual_seed(0)
        try:
            trainer = BYOLTrainer(tiny_cnn(), ImageFolderDataset(folder, 16), 16, gpu_decode=gpu_decode,
                                  num_train_steps=2, batch_size=4, num_workers=0, hidden_layer="flatten",
                                  projection_size=8, projection_hidden_size=16, progress=False,
                                  mixed_precision="no", output_dir=str(tmp_path / f"run-{gpu_decode}"),
                                  accelerator_kwargs={"cpu": device == "cpu"})
            # The loader hands over the JPEGs undecoded; the decoder on the device makes the views.
            batch = next(iter(trainer.data.loader(0)))
            assert isinstance(batch, EncodedBatch) == gpu_decode
            trainer()
        finally:
            AcceleratorState._reset_state(reset_partial_state=True)
        assert trainer.step == 2
        losses[gpu_decode] = [r["loss"] for r in trainer.history if "loss" in r]
    # The same crops from the same draws; only the resampler differs (torch on the device, PIL in the workers).
    assert losses[True] == pytest.approx(losses[False], rel=2e-3)


PHOTO_SHAPE = (512, 768, 3)  # over 1 MB decoded: the allocator's large pool, as for photos


def _corrupted_reads(decode, folder: Path, rounds: int = 20) -> int:
    """In how many of ``rounds`` the sums queued on tensors freed just before ``decode`` ran came out wrong.

    Each round fills one tensor per JPEG of ``folder``, as many bytes as the
    decoded image, queues tens of milliseconds of work and then a sum of each,
    frees the tensors, and calls ``decode(files, device)``: the allocator offers
    the decoder the freed blocks, which the queued sums have yet to read.
    """
    device = torch.device("cuda")
    files = [torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8) for path in sorted(folder.glob("*.jpg"))]
    length = int(np.prod(PHOTO_SHAPE)) // 4  # float32 elements
    wrong = 0
    for _ in range(rounds):
        victims = [torch.full((length,), float(k + 1), device=device) for k in range(len(files))]
        torch.cuda.synchronize()
        torch.cuda._sleep(50_000_000)
        sums = [victim.sum() for victim in victims]
        del victims
        decode(files, device)
        torch.cuda.synchronize()
        wrong += any(total.item() != length * (k + 1) for k, total in enumerate(sums))
    return wrong


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_decoding_waits_for_the_queued_work_it_could_overwrite(tmp_path: Path) -> None:
    from byol_pytorch.data.views.gpu_decode import _decode_all

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, PHOTO_SHAPE, dtype=np.uint8)).save(folder / f"{i}.jpg")
    assert _corrupted_reads(_decode_all, folder) == 0
