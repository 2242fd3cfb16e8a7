"""The training data's order: epochs that follow one another without a gap, shards, and a place kept in images."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from byol_pytorch import ImageFolderDataset, MockDataset
from byol_pytorch.data import LoaderCrops
from byol_pytorch.data.pipeline import SpanningSampler, TrainingData
from byol_pytorch.model.augment import CropSpec



def write_photos(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (30, 40 + i, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    return folder


def take(sampler: SpanningSampler, count: int) -> list[tuple[int, int]]:
    return list(itertools.islice(iter(sampler), count))


def test_each_epoch_is_a_permutation_and_the_next_follows_without_a_gap() -> None:
    pairs = take(SpanningSampler(10, 4, 1, 0, seed=3), 30)
    for epoch in range(3):
        chunk = pairs[epoch * 10:(epoch + 1) * 10]
        assert {e for e, _ in chunk} == {epoch} and sorted(i for _, i in chunk) == list(range(10))
    # A batch of 4 spans epochs 0 and 1 (positions 8 to 11); the orders differ between epochs.
    assert pairs[8:12] == [(0, pairs[8][1]), (0, pairs[9][1]), (1, pairs[10][1]), (1, pairs[11][1])]
    assert [i for _, i in pairs[:10]] != [i for _, i in pairs[10:20]]
    assert take(SpanningSampler(10, 4, 1, 0, seed=3), 30) == pairs  # the same seed, the same order
    assert take(SpanningSampler(10, 4, 1, 0, seed=4), 10) != pairs[:10]


def test_processes_share_each_batch_and_read_no_image_twice() -> None:
    whole = take(SpanningSampler(12, 3, 1, 0, seed=0), 24)
    shards = [take(SpanningSampler(12, 3, 2, rank, seed=0), 12) for rank in (0, 1)]
    # Global batch g of 6 positions: rank 0 takes its first 3, rank 1 the next 3.
    interleaved = [pair for g in range(4) for rank in (0, 1) for pair in shards[rank][g * 3:(g + 1) * 3]]
    assert interleaved == whole


@pytest.mark.parametrize(("before", "after"), [((2, 4), (1, 4)), ((1, 4), (2, 4)), ((2, 4), (3, 2)), ((1, 3), (2, 5))])
def test_a_resumed_place_reads_the_rest_of_the_epoch_once_whatever_the_processes(before: tuple[int, int],
                                                                                 after: tuple[int, int]) -> None:
    length, (processes, batch), (new_processes, new_batch) = 40, before, after
    steps = 3
    seen = [take(SpanningSampler(length, batch, processes, rank, seed=7), steps * batch)
            for rank in range(processes)]
    start = steps * batch * processes
    rest = length - start
    per_rank = -(-rest // (new_processes * new_batch)) * new_batch  # whole batches covering the rest
    resumed = [take(SpanningSampler(length, new_batch, new_processes, rank, seed=7, start=start), per_rank)
               for rank in range(new_processes)]
    epoch_0 = [i for shard in seen + resumed for e, i in shard if e == 0]
    assert sorted(epoch_0) == list(range(length))


def test_bad_sizes_are_refused_with_their_name() -> None:
    with pytest.raises(ValueError, match="batch_size must be an integer of at least 1, got 0"):
        SpanningSampler(10, 0, 1, 0, seed=0)
    with pytest.raises(ValueError, match=r"process_index must lie in \[0, 2\), got 2"):
        SpanningSampler(10, 2, 2, 2, seed=0)
    with pytest.raises(ValueError, match="fewer than one batch"):
        TrainingData(MockDataset(8, 5), batch_size=4, num_processes=2, process_index=0, seed=0, num_workers=0,
                     device=torch.device("cpu"))


@pytest.mark.parametrize("workers", [0, 2])
def test_the_loader_goes_on_past_the_epoch_and_crops_follow_the_epoch_of_each_item(tmp_path: Path,
                                                                                   workers: int) -> None:
    folder = write_photos(tmp_path / "photos", 6)
    spec = CropSpec.paper(16)
    data = TrainingData(ImageFolderDataset(folder, 16), batch_size=4, num_processes=1, process_index=0, seed=5,
                        num_workers=workers, device=torch.device("cpu"), crops=LoaderCrops(spec, seed=5))
    batches = list(itertools.islice(iter(data.loader(start=2)), 3))  # positions 2..13: epochs 0, 1 and 2
    views = torch.cat([b.view_1 for b in batches])
    sampler = SpanningSampler(6, 4, 1, 0, seed=5, start=2)
    reference = ImageFolderDataset(folder, 16, crops=LoaderCrops(spec, seed=5))
    for row, (epoch, index) in zip(views, take(sampler, 12)):
        reference.set_epoch(epoch)
        assert torch.equal(row, reference[index].view_1)
    assert data.learner_input(batches[0]).count == 4
