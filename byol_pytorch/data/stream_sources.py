"""How each kind of stream source is read by one slot (a process's loader worker): which samples, from where.

Tar shards are dealt to slots by shard (by sample when there are fewer shards
than slots); a ``datasets.IterableDataset`` is split by ``datasets`` itself;
any other iterable is read whole by every slot, each keeping every ``S``-th
sample. Each sample comes with the slot's *position* after reading it, from
which :meth:`_Source.samples` restarts (see ``byol_pytorch.data.streams``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np

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


class Source(ABC):
    """How one kind of source is read by a slot: ``samples`` yields ``(raw sample, position after it)``."""

    @abstractmethod
    def samples(self, slot: Slot, start: Position) -> Iterator[tuple[Any, Position]]:
        """The slot's raw samples from ``start`` on, each with the position after it."""


class _ShardSource(Source):
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


class _HuggingFaceSource(Source):
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


class _IterableSource(Source):
    """Any iterable: every slot reads all of it and keeps every ``count``-th sample."""

    def __init__(self, source: Iterable[Any]) -> None:
        self.source = source

    def samples(self, slot: Slot, start: Position) -> Iterator[tuple[Any, Position]]:
        pass_, skip = start["pass"], start.get("read", 0)
        for read, sample in enumerate(self.source, start=1):
            if read > skip and (read - 1) % slot.count == slot.index:
                yield sample, {"pass": pass_, "read": read}


def source_of(source: Any, rank: int, world_size: int, seed: int, shuffle_shards: bool, undecoded: bool) -> Source:
    """The reader of ``source`` for one process; ``undecoded``: a ``datasets`` source may yield its images encoded."""
    if isinstance(source, str):
        return _ShardSource(expand_shards(source), seed, shuffle_shards)
    if isinstance(source, (list, tuple)) and source and all(isinstance(u, str) for u in source):
        return _ShardSource(list(source), seed, shuffle_shards)
    if type(source).__module__.startswith("datasets.") and hasattr(source, "set_epoch"):
        return _HuggingFaceSource(source, rank, world_size, undecoded)
    if not isinstance(source, Iterable):
        raise TypeError(f"a stream's source must be shard names, a datasets.IterableDataset or an iterable, got "
                        f"{type(source).__module__}.{type(source).__qualname__}")
    return _IterableSource(source)
