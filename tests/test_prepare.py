"""What the trainer is given, made into what its data pipeline reads (byol_pytorch/data/pipeline/prepare.py)."""

from __future__ import annotations

from itertools import islice

import pytest
import torch
from torch.utils.data import IterableDataset

from byol_pytorch.data import ImageFolderDataset, PhotoDataset, TrainingStream
from byol_pytorch.data.formats.items import is_stream
from byol_pytorch.data.pipeline.prepare import prepare_dataset
from byol_pytorch.errors import NoImageInItemError

from .photo_sources import hf_dataset, photo

OPTIONS = {"image_size": 16, "image_key": "image", "rank": 0, "world_size": 1, "seed": 0, "shuffle_buffer": 4}


class _Photos(IterableDataset):
    """A plain stream of dicts holding PIL photos of two sizes, without a length."""

    def __iter__(self):
        for i in range(8):
            yield {"__key__": f"p{i}", "image": photo(i)}


def test_tensors_stay_and_photos_are_sized_in_the_loader(tmp_path) -> None:
    tensors = [torch.rand(3, 16, 16) for _ in range(4)]
    assert prepare_dataset(tensors, **OPTIONS) is tensors
    rows = prepare_dataset(hf_dataset(4), **OPTIONS)
    assert isinstance(rows, PhotoDataset) and rows[0].shape == (3, 16, 16) and rows[1].shape == (3, 16, 16)
    photo(0).save(tmp_path / "a.jpg")
    folder = ImageFolderDataset(tmp_path, 16)
    assert prepare_dataset(folder, **OPTIONS) is folder


@pytest.mark.parametrize("kind", ["plain", "hugging face", "training stream"])
def test_streams_become_this_process_s_training_stream(kind: str) -> None:
    source = {"plain": _Photos(), "hugging face": hf_dataset(8).to_iterable_dataset(num_shards=2),
              "training stream": TrainingStream(_Photos(), rank=0, world_size=1, shuffle_buffer=2)}[kind]
    assert is_stream(source)
    stream = prepare_dataset(source, **{**OPTIONS, "rank": 1, "world_size": 2})
    assert isinstance(stream, TrainingStream) and (stream.rank, stream.world_size) == (1, 2)
    if kind != "training stream":  # the user's own stream keeps its own transform (none here)
        assert all(item.item.shape == (3, 16, 16) for item in islice(iter(stream), 6))


def test_items_without_images_are_refused_before_training() -> None:
    with pytest.raises(NoImageInItemError, match=r"keys \['label'\]"):
        prepare_dataset(hf_dataset(2).remove_columns("image"), **OPTIONS)
    with pytest.raises(NoImageInItemError, match=r"keys \['caption', 'label'\]: no key 'pixels' and no image-like"):
        prepare_dataset([{"caption": "a cat", "label": 1}], **{**OPTIONS, "image_key": "pixels"})
    with pytest.raises(TypeError, match=r"holds a builtins\.str"):
        prepare_dataset(["a.jpg", "b.jpg"], **OPTIONS)
