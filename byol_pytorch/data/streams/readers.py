"""The per-slot readers of a stream: which samples one slot (a process's loader worker) reads, from where.

Tar shards are dealt to slots by shard (by sample when there are fewer shards
than slots); a ``datasets.IterableDataset`` is split by ``datasets`` itself;
a ``webdataset`` pipeline has its own splitting stages replaced by one that
deals its shards to slots (its samples, when it has no such stage or fewer
shards than slots); any other iterable is read whole by every slot, each
keeping every ``S``-th sample. Each sample comes with the slot's *position* after reading it, from
which :meth:`Reader.samples` restarts (see :mod:`byol_pytorch.data.streams.stream`).
"""

from __future__ import annotations

import copy
import functools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, NamedTuple

import numpy as np

from ..formats.items import is_hugging_face_stream
from .shards import expand_shards, shard_samples

Position = dict[str, Any]


class Slot(NamedTuple):
    """Which part of the stream one ``(process, worker)`` reads: ``index`` of ``count``."""

    rank: int
    worker: int
    workers: int
    world_size: int

    @property
    def index(self) -> int:
        return self.rank * self.workers + self.worker

    @property
    def count(self) -> int:
        return self.world_size * self.workers

    @property
    def name(self) -> str:
        return f"{self.rank}/{self.worker}"


class Reader(ABC):
    """How one kind of stream is read by a slot: ``samples`` yields ``(raw sample, position after it)``."""

    @abstractmethod
    def samples(self, slot: Slot, start: Position) -> Iterator[tuple[Any, Position]]:
        """The slot's raw samples from ``start`` on, each with the position after it."""


class _ShardReader(Reader):
    """Tar shards, split by shard (or, with fewer shards than slots, by sample)."""

    def __init__(self, urls: list[str], seed: int, shuffle_shards: bool) -> None:
        self.urls, self.seed, self.shuffle_shards = list(urls), seed, shuffle_shards

    def _order(self, pass_: int) -> list[str]:
        if not self.shuffle_shards:
            return list(self.urls)
        return [self.urls[i] for i in np.random.default_rng([self.seed, pass_]).permutation(len(self.urls))]

    def samples(self, slot: Slot, start: Position) -> Iterator[tuple[Any, Position]]:
        pass_, first, skip = start["pass"], start.get("shard", 0), start.get("read", 0)
        order = self._order(pass_)
        by_shard = len(order) >= slot.count
        mine = order[slot.index :: slot.count] if by_shard else order
        for number in range(first, len(mine)):
            for read, sample in enumerate(shard_samples(mine[number]), start=1):
                if number == first and read <= skip:
                    continue
                # With fewer shards than slots, the samples of each shard are dealt to the slots in turn.
                if by_shard or (read - 1) % slot.count == slot.index:
                    yield sample, {"pass": pass_, "shard": number, "read": read}


class _HuggingFaceReader(Reader):
    """A ``datasets.IterableDataset``: split by ``datasets`` across processes and workers, resumed from its state."""

    def __init__(self, dataset: Any, rank: int, world_size: int, undecoded: bool) -> None:
        from datasets.distributed import split_dataset_by_node

        if undecoded and hasattr(dataset, "decode"):
            # Images stay encoded in the shuffle buffer (a tenth of the memory); only the samples kept are decoded.
            dataset = dataset.decode(False)
        self.dataset = split_dataset_by_node(dataset, rank=rank, world_size=world_size) if world_size > 1 else dataset

    def samples(self, slot: Slot, start: Position) -> Iterator[tuple[Any, Position]]:
        pass_ = start["pass"]
        self.dataset.set_epoch(pass_)
        resumable = hasattr(self.dataset, "state_dict")
        if resumable and start.get("state") is not None:
            self.dataset.load_state_dict(start["state"])
        for sample in self.dataset:
            yield sample, {"pass": pass_, "state": self.dataset.state_dict() if resumable else None}


class _IterableReader(Reader):
    """Any iterable: every slot reads all of it and keeps every ``count``-th sample."""

    def __init__(self, source: Iterable[Any]) -> None:
        self.source = source

    def _read_by(self, slot: Slot) -> tuple[Iterable[Any], bool]:
        """What the slot iterates, and whether that is already its share (else it keeps every ``count``-th)."""
        return self.source, False

    def samples(self, slot: Slot, start: Position) -> Iterator[tuple[Any, Position]]:
        source, dealt = self._read_by(slot)
        pass_, skip = start["pass"], start.get("read", 0)
        for read, sample in enumerate(source, start=1):
            if read > skip and (dealt or (read - 1) % slot.count == slot.index):
                yield sample, {"pass": pass_, "read": read}


def _webdataset_splitters() -> tuple[Any, ...]:
    from webdataset import shardlists

    return shardlists.split_by_node, shardlists.single_node_only, shardlists.split_by_worker


def _is_splitter(stage: Any) -> bool:
    """Whether a pipeline stage is one of webdataset's node or worker splitters (a partial of one included)."""
    function = stage.func if isinstance(stage, functools.partial) else stage
    return any(function is splitter for splitter in _webdataset_splitters())


def _deal(source: Iterable[Any], slot: Slot) -> Iterator[Any]:
    """The slot's share of a pipeline's shards: every ``count``-th, from its ``index``."""
    return islice(source, slot.index, None, slot.count)


class _WebDatasetReader(_IterableReader):
    """A ``webdataset`` pipeline (``wds.WebDataset``, ``wds.DataPipeline``), whose splitting is ours.

    webdataset's splitters read the process and worker from the environment
    and would split a second time under our slots (or, ``single_node_only``,
    refuse two processes). A copy of the pipeline reads in their place:

    * with a splitter stage and at least as many shards as slots, one stage
      where the first splitter stood, dealing the shards to slots;
    * otherwise, no splitter: every slot reads all the samples and keeps every
      ``S``-th, as for any iterable.

    The user's pipeline is never changed.
    """

    def __init__(self, pipeline: Any) -> None:
        super().__init__(pipeline)
        stages = list(pipeline.pipeline)
        self.first_splitter = next((i for i, stage in enumerate(stages) if _is_splitter(stage)), None)
        self.kept = [stage for stage in stages if not _is_splitter(stage)]
        urls = getattr(stages[0], "urls", None) if stages else None
        self.shards = len(urls) if isinstance(urls, list) else None

    def _read_by(self, slot: Slot) -> tuple[Iterable[Any], bool]:
        """A copy of the pipeline as the slot reads it, and whether it deals shards (else, samples)."""
        by_shard = self.first_splitter is not None and (self.shards is None or self.shards >= slot.count)
        stages = list(self.kept)
        if by_shard:
            stages.insert(self.first_splitter, functools.partial(_deal, slot=slot))
        pipeline = copy.copy(self.source)
        pipeline.pipeline = stages
        return pipeline, by_shard


def _is_webdataset(source: Any) -> bool:
    return type(source).__module__.startswith("webdataset.") and isinstance(getattr(source, "pipeline", None), list)


def reader_for(source: Any, rank: int, world_size: int, seed: int, shuffle_shards: bool, undecoded: bool) -> Reader:
    """The reader of a stream's ``source`` for one process; ``undecoded``: ``datasets`` may yield images encoded."""
    if isinstance(source, str):
        return _ShardReader(expand_shards(source), seed, shuffle_shards)
    if isinstance(source, (list, tuple)) and source and all(isinstance(u, str) for u in source):
        return _ShardReader(list(source), seed, shuffle_shards)
    if is_hugging_face_stream(source):
        return _HuggingFaceReader(source, rank, world_size, undecoded)
    if _is_webdataset(source):
        return _WebDatasetReader(source)
    if not isinstance(source, Iterable):
        raise TypeError(f"a stream's source must be shard names, a datasets.IterableDataset or an iterable, got "
                        f"{type(source).__module__}.{type(source).__qualname__}")
    return _IterableReader(source)
