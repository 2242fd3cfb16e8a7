"""BYOLTrainer on Hugging Face datasets, streams and shards: trained, refused before writing, resumed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import IterableDataset

from byol_pytorch import BYOLTrainer, PhotoTransform, TrainingStream
from byol_pytorch.data.streams import StreamProgress
from byol_pytorch.errors import NoImageInItemError

from .conftest import state_copy, tiny_cnn
from .photo_sources import hf_dataset, photo, sample_key, write_shards

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")
_CONSUME = StreamProgress.consume  # the unpatched method (each run of a test patches it anew)

FAST = {"hidden_layer": "flatten", "projection_size": 8, "projection_hidden_size": 16, "num_workers": 0,
        "mixed_precision": "no", "progress": False, "log_every": 1, "batch_size": 4, "checkpoint_every": 2}


class _Photos(IterableDataset):
    """A plain stream without a length: dicts holding PIL photos of two sizes."""

    def __iter__(self):
        for i in range(10):
            yield {"__key__": f"p{i}", "image": photo(i), "label": i % 3}


def _trainer(tmp_path: Path, dataset: object, steps: int = 3, **options: object) -> BYOLTrainer:
    torch.manual_seed(0)
    return BYOLTrainer(tiny_cnn(), dataset=dataset, image_size=16, num_train_steps=steps,
                       output_dir=str(tmp_path / "run"), **{**FAST, **options})


@pytest.mark.parametrize("kind", ["datasets.Dataset", "datasets.IterableDataset", "IterableDataset"])
def test_trains_on_hugging_face_data_and_streams(tmp_path: Path, kind: str) -> None:
    dataset = {"datasets.Dataset": lambda: hf_dataset(8),
               "datasets.IterableDataset": lambda: hf_dataset(8).to_iterable_dataset(num_shards=2),
               "IterableDataset": _Photos}[kind]()
    trainer = _trainer(tmp_path, dataset)
    before = state_copy(trainer.net)
    trainer()
    after = state_copy(trainer.net)
    assert trainer.step == 3 and [r["step"] for r in trainer.history if "loss" in r] == [1, 2, 3]
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    assert not torch.equal(before["conv.weight"], after["conv.weight"])


@pytest.mark.parametrize(("dataset", "error", "message"), [
    (lambda: hf_dataset(4).remove_columns("image"), NoImageInItemError, r"keys \['label'\]"),
    (lambda: [{"caption": "a cat", "id": 3}] * 8, NoImageInItemError, r"keys \['caption', 'id'\]"),
    (lambda: ["cat.jpg"] * 8, TypeError, r"holds a builtins\.str, not an image"),
])
def test_items_without_images_are_refused_before_anything_is_written(tmp_path: Path, dataset, error,
                                                                       message: str) -> None:
    with pytest.raises(error, match=message):
        _trainer(tmp_path, dataset())
    assert not (tmp_path / "run").exists()


def _trained_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pattern: str, steps: int, buffer: int,
                  **options: object) -> list[tuple[str, int]]:
    """The (key, pass) of every image the training loop consumed, in order."""
    keys: list[tuple[str, int]] = []

    def record(self: StreamProgress, batch):  # type: ignore[no-untyped-def]
        keys.extend(batch.keys)
        return _CONSUME(self, batch)

    monkeypatch.setattr(StreamProgress, "consume", record)
    stream = TrainingStream(pattern, transform=PhotoTransform(16), shuffle_buffer=buffer, shuffle_shards=False)
    _trainer(tmp_path, stream, steps=steps, **options)()
    return keys


@pytest.mark.parametrize("buffer", [1, 4])
def test_a_resumed_stream_behaves_as_documented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                buffer: int) -> None:
    pattern = write_shards(tmp_path / "shards", 3, 8)
    whole = _trained_keys(tmp_path / "a", monkeypatch, pattern, steps=4, buffer=buffer)
    first = _trained_keys(tmp_path / "b", monkeypatch, pattern, steps=2, buffer=buffer)
    with pytest.warns(UserWarning, match="resuming step 2 with num_train_steps 4 instead of 2"):
        rest = _trained_keys(tmp_path / "b", monkeypatch, pattern, steps=4, buffer=buffer, resume=True)
    assert first == whole[:8] and len(rest) == 8
    resumed = [key for key, _ in first + rest]
    assert len(set(resumed)) == len(resumed), "a resumed stream trained on a sample twice in its first pass"
    if buffer == 1:  # no shuffle buffer: the resumed run reads exactly what the uninterrupted one did
        assert first + rest == whole
    else:  # the buffer's content at the checkpoint (buffer - 1 samples read, not trained on) is skipped
        in_order = [sample_key(tmp_path / "shards", i, 8) for i in range(24)]
        read_before = in_order[: len(first) + buffer - 1]
        skipped = set(read_before) - {key for key, _ in first}
        assert len(skipped) == buffer - 1 and not skipped & {key for key, _ in rest}


def test_shards_decode_their_jpegs_on_the_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from byol_pytorch.data.pipeline import training as pipeline

    decoded: list[int] = []
    decode = pipeline.decode_views
    monkeypatch.setattr(pipeline, "decode_views", lambda batch, *a: decoded.append(len(batch.data)) or decode(batch, *a))
    stream = TrainingStream(write_shards(tmp_path / "shards", 2, 4), transform=PhotoTransform(16), shuffle_buffer=2)
    trainer = _trainer(tmp_path, stream, steps=2, gpu_decode=True, accelerator_kwargs={"cpu": True})
    trainer()
    assert decoded == [4, 4]  # every JPEG of both batches reached the device undecoded
    assert trainer.step == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in trainer.history if "loss" in r)
