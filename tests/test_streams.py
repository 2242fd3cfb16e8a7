"""Training streams (byol_pytorch/data/streams.py): split across processes and workers, shuffled, resumed."""

from __future__ import annotations

import logging
from collections import defaultdict
from functools import partial
from itertools import islice
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset

from byol_pytorch.data import PhotoTransform, collate_images
from byol_pytorch.data.streams import StreamItem, TrainingStream, collate_stream, stream_state

from .photo_sources import hf_dataset, sample_key, write_shards

PER_SHARD = 4


@pytest.fixture(scope="module")
def shard_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[str, list[str]]]:
    """Shards of the same 24 photos, cut into 6 shards (more than 4 slots) and 2 (fewer): pattern, keys."""
    root = tmp_path_factory.mktemp("shards")
    out = {}
    for shards in (6, 2):
        per_shard = 24 // shards
        pattern = write_shards(root / str(shards), shards, per_shard)
        out[shards] = (pattern, [sample_key(root / str(shards), i, per_shard) for i in range(24)])
    return out


class _Numbers(IterableDataset):
    """A plain stream with no length: the keys ``n0`` ... ``n{count-1}`` in order."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __iter__(self):
        for i in range(self.count):
            yield {"__key__": f"n{i}", "image": torch.zeros(3, 2, 2)}


def _key(item: dict) -> str:
    return item["__key__"]


def _passes_read(source: object, world_size: int, workers: int, items_per_rank: int) -> dict[int, list[str]]:
    """The keys each pass delivered, over all ranks and workers (from one DataLoader per rank)."""
    seen: dict[int, list[str]] = defaultdict(list)
    for rank in range(world_size):
        stream = TrainingStream(source, rank=rank, world_size=world_size, shuffle_buffer=3, seed=1)
        loader = DataLoader(stream, batch_size=None, num_workers=workers)
        for item in islice(loader, items_per_rank):
            seen[item.position["pass"]].append(_key(item.item))
    return seen


@pytest.mark.parametrize("shards", [6, 2])
def test_shards_split_across_two_ranks_and_two_workers(shard_sets, shards: int) -> None:
    pattern, keys = shard_sets[shards]
    # Each rank reads 2 passes' worth of its half: pass 0 is complete on every slot.
    seen = _passes_read(pattern, world_size=2, workers=2, items_per_rank=24)
    first = seen[0]
    assert len(first) == len(set(first)), "a sample was read twice in one pass"
    assert sorted(first) == sorted(keys)


def test_a_plain_stream_and_a_hugging_face_stream_split_too() -> None:
    plain = _passes_read(_Numbers(20), world_size=2, workers=2, items_per_rank=20)
    assert sorted(plain[0]) == sorted(f"n{i}" for i in range(20))
    rows = hf_dataset(16).add_column("__key__", [f"h{i}" for i in range(16)])
    streamed = rows.to_iterable_dataset(num_shards=4)
    seen = _passes_read(streamed, world_size=2, workers=2, items_per_rank=16)
    assert len(seen[0]) == 16 and sorted(seen[0]) == sorted(f"h{i}" for i in range(16))


@pytest.mark.parametrize("shards", [6, 2])
def test_a_webdatasets_own_splitters_give_way_to_the_slots(shard_sets, shards: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import webdataset as wds

    from byol_pytorch.data.pipeline.prepare import prepare_dataset

    pattern, keys = shard_sets[shards]
    # Its default stages split by worker and refuse two processes (read from RANK and WORLD_SIZE, as a launcher
    # sets them); with 2 shards for 4 slots, samples are dealt.
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    pipeline = wds.WebDataset(pattern, shardshuffle=False).decode("pil")
    stages = list(pipeline.pipeline)
    stream = prepare_dataset(pipeline, image_size=8, image_key="image", rank=1, world_size=2, seed=0,
                             shuffle_buffer=2)
    assert isinstance(stream, TrainingStream) and stream.rank == 1
    seen = _passes_read(pipeline, world_size=2, workers=2, items_per_rank=24)
    assert len(seen[0]) == 24 and sorted(seen[0]) == sorted(key.rsplit(":", 1)[1] for key in keys)
    assert pipeline.pipeline == stages, "the user's pipeline was changed"


def _run(source: object, count: int, buffer: int, state: dict | None = None) -> list[StreamItem]:
    stream = TrainingStream(source, shuffle_buffer=buffer, seed=3, shuffle_shards=False)
    if state is not None:
        stream.load_state_dict(state)
    return list(islice(iter(stream), count))


def _resumed(source: object, stop: int, count: int, buffer: int) -> tuple[list[StreamItem], list[StreamItem]]:
    """Items before a checkpoint after ``stop`` items, and ``count`` items of the stream resumed from it."""
    before = _run(source, stop, buffer)
    state = stream_state({before[-1].slot: before[-1].position}, slots=1)
    return before, _run(source, count, buffer, state)


@pytest.mark.parametrize("source_kind", ["shards", "plain", "hugging face", "webdataset"])
def test_without_a_shuffle_buffer_a_resumed_stream_continues_exactly(shard_sets, source_kind: str) -> None:
    import webdataset as wds

    source = {"shards": shard_sets[6][0], "plain": _Numbers(24),
              "webdataset": wds.WebDataset(shard_sets[6][0], shardshuffle=False),
              "hugging face": hf_dataset(24).add_column("__key__", [f"h{i}" for i in range(24)])
              .to_iterable_dataset(num_shards=3)}[source_kind]
    whole = [_key(i.item) for i in _run(source, 30, buffer=1)]
    before, after = _resumed(source, 7, 23, buffer=1)
    assert [_key(i.item) for i in before + after] == whole


def test_a_resumed_shuffled_stream_skips_its_buffer_and_repeats_nothing(shard_sets) -> None:
    pattern, keys = shard_sets[6]
    buffer = 5
    whole = _run(pattern, 24, buffer)
    assert [_key(i.item) for i in whole] != keys and sorted(_key(i.item) for i in whole) == sorted(keys)
    before, after = _resumed(pattern, 9, 40, buffer)
    first_pass = [_key(i.item) for i in before + after if i.position["pass"] == 0]
    assert len(first_pass) == len(set(first_pass)), "a resumed stream yielded a sample twice in one pass"
    skipped = set(keys) - set(first_pass)
    # Exactly the samples that sat in the buffer at the checkpoint: read, never trained on.
    assert len(skipped) == buffer - 1
    assert skipped <= {_key(i.item) for i in after if i.position["pass"] == 1}


def test_another_layout_of_slots_starts_the_next_pass(shard_sets) -> None:
    pattern, _ = shard_sets[6]
    state = {"slots": 4, "positions": {"0/0": {"pass": 2, "shard": 1, "read": 3}}}
    assert {i.position["pass"] for i in _run(pattern, 5, 1, state)} == {3}


def test_broken_photos_are_skipped_with_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pattern = write_shards(tmp_path, 2, 3, broken=(1, 4))
    stream = TrainingStream(pattern, transform=PhotoTransform(16), shuffle_buffer=1, shuffle_shards=False)
    loader = DataLoader(stream, batch_size=2, collate_fn=partial(collate_stream, collate=collate_images))
    with caplog.at_level(logging.WARNING, logger="byol_pytorch.data"):
        batches = list(islice(loader, 4))  # two passes: each broken sample is named once
    assert batches[0].batch.shape == (2, 3, 16, 16) and batches[0].batch.dtype == torch.float32
    # Samples 0, 2, 3, 5 decode; the batch's position is after its last read sample.
    assert batches[1].positions == {"0/0": {"pass": 0, "shard": 1, "read": 3}}
    assert [key for batch in batches for key in batch.keys] == [
        (sample_key(tmp_path, i, 3), p) for p in (0, 1) for i in (0, 2, 3, 5)]
    skipped = [r.getMessage() for r in caplog.records if "skipped unreadable image" in r.getMessage()]
    assert len(skipped) == 2 and "000001" in skipped[0] and "UnidentifiedImageError" in skipped[0]


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match=r"rank must be in \[0, world_size=2\), got 2"):
        TrainingStream(_Numbers(2), rank=2, world_size=2)
    with pytest.raises(ValueError, match="shuffle_buffer must be at least 1"):
        TrainingStream(_Numbers(2), shuffle_buffer=0)
    with pytest.raises(TypeError, match="got builtins.int"):
        TrainingStream(3)


def test_progress_keeps_the_consumed_positions_and_merges_processes() -> None:
    from byol_pytorch.data.streams import StreamBatch, StreamProgress, merge_states

    ranks = [StreamProgress(slots=4), StreamProgress(slots=4)]
    assert ranks[0].consume(StreamBatch("b", {"0/0": {"pass": 0, "read": 3}}, [])) == "b"
    ranks[0].consume(StreamBatch("c", {"0/0": {"pass": 0, "read": 5}}, []))
    ranks[1].consume(StreamBatch("d", {"1/1": {"pass": 1, "read": 1}}, []))
    assert merge_states([r.state_dict() for r in ranks]) == {
        "slots": 4, "positions": {"0/0": {"pass": 0, "read": 5}, "1/1": {"pass": 1, "read": 1}}}
