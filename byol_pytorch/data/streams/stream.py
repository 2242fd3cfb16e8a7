"""Streams as training data: split across processes and loader workers, shuffled in a buffer, resumable.

:class:`TrainingStream` makes a source without a length (tar shards, a
``datasets.IterableDataset``, any ``torch.utils.data.IterableDataset`` or
iterable, a ``webdataset`` pipeline) into an endless ``IterableDataset`` that
a ``DataLoader`` batches. Each ``(process, loader worker)`` pair is a *slot*;
slot ``s`` of ``S = world_size x num_workers`` reads

* tar shards: every ``S``-th shard of the pass's shard order (the same order
  on every slot, shuffled per pass from ``seed``); with fewer shards than
  slots, every shard, keeping every ``S``-th sample;
* a ``datasets.IterableDataset``: the shards ``datasets`` gives it
  (``split_dataset_by_node`` with the explicit rank, then its own split among
  workers);
* a ``webdataset`` pipeline (``wds.WebDataset``, ``wds.DataPipeline``): a
  copy whose own node and worker splitters are replaced by one that deals its
  shards to the slots (webdataset's would split again under ours, or refuse two
  processes); without a splitter stage, or with fewer shards than slots, its
  samples are dealt instead, as for any iterable. A pipeline whose shard
  shuffle has no fixed ``seed`` reads another order after a resume;
* anything else: the whole source, keeping every ``S``-th sample;

so that no sample is read by two slots in one pass. Each slot passes over its
part again and again. The order comes from a shuffle buffer per slot
(``shuffle_buffer`` samples, seeded by ``(seed, slot, pass, start)``); only the
samples kept are decoded.

Resume. Every item carries its slot's *position*: the pass, and in it the
next sample the slot would read from its source (shard number and samples
read in that shard, or ``datasets``'s own ``state_dict``). A batch carries the
position of its last item; the positions of the batches consumed are what a
checkpoint saves (:meth:`TrainingStream.load_state_dict` restarts there).
A resumed slot then

* sees again no sample it had yielded in that pass;
* skips, for the rest of that pass, the samples that sat in its shuffle
  buffer (at most ``shuffle_buffer - 1``) and in batches the loader had read
  ahead but training had not used: these were read from the source, not
  trained on;
* with ``shuffle_buffer=1`` (no shuffling) and a source that repeats its
  order, continues exactly as the uninterrupted run would have;
* re-reads (without decoding) the samples before the position of a plain
  iterable, which can only be read from its start;
* restarts at the beginning of the next pass when the slots differ from the
  checkpoint's (another number of processes or workers): the rest of the
  interrupted pass is skipped.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from ..formats.decode import UnreadableImageError, log_skipped
from ..formats.photo import PhotoTransform
from ..views.crops import CropsInLoader, LoaderCrops
from .progress import StreamItem
from .readers import Position, Slot, reader_for

_LOG = logging.getLogger(__name__)


class TrainingStream(IterableDataset, CropsInLoader):
    """An endless, shuffled, resumable stream of one process's part of a source (see the module's notes).

    Args:
        source: tar shard names (a brace pattern such as
            ``'shards/train-{000000..000127}.tar'`` or a list), a
            ``datasets.IterableDataset``, or any iterable of items (a
            ``torch.utils.data.IterableDataset``, a ``webdataset`` pipeline).
        rank: this process's index among ``world_size``; passed in, never read
            from the distributed state.
        world_size: the number of processes reading the stream.
        transform: applied in the worker to each kept sample, as
            ``transform(sample, index, pass)`` (e.g. a
            :class:`~byol_pytorch.data.PhotoTransform`); a sample whose
            image does not decode (``UnreadableImageError``) is logged and
            passed over. ``None`` yields the samples as they are.
        shuffle_buffer: samples held per slot to draw the order from; 1 keeps the source's order.
        seed: seeds the shuffle buffers and the shard order.
        shuffle_shards: shuffle the shard order per pass (tar shards only).
    """

    def __init__(self, source: Any, *, rank: int = 0, world_size: int = 1,
                 transform: Callable[[Any, int, int], Any] | None = None, shuffle_buffer: int = 1000,
                 seed: int = 0, shuffle_shards: bool = True) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        if shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be at least 1 (1 keeps the source's order), got {shuffle_buffer}")
        self.rank, self.world_size, self.transform = rank, world_size, transform
        self.shuffle_buffer, self.seed, self.shuffle_shards = int(shuffle_buffer), int(seed), shuffle_shards
        self.source = source
        # Our own transform decodes encoded images itself; another callable gets the samples as the source makes them.
        self._reader = reader_for(source, rank, world_size, self.seed, shuffle_shards,
                                 undecoded=isinstance(transform, PhotoTransform))
        self._start: dict[str, Any] = {}

    def for_process(self, rank: int, world_size: int) -> TrainingStream:
        """The same stream read by process ``rank`` of ``world_size`` (the trainer passes its own)."""
        if (rank, world_size) == (self.rank, self.world_size):
            return self
        twin = TrainingStream(self.source, rank=rank, world_size=world_size, transform=self.transform,
                              shuffle_buffer=self.shuffle_buffer, seed=self.seed, shuffle_shards=self.shuffle_shards)
        twin._start = dict(self._start)
        return twin

    @property
    def crops(self) -> LoaderCrops | None:
        """The loader crops its transform draws, if it has any (``None``: whole images)."""
        return self.transform.crops if isinstance(self.transform, CropsInLoader) else None

    def takes_crops(self) -> bool:
        """Whether its transform can draw the views (a :class:`~byol_pytorch.data.PhotoTransform`) and draws none yet."""
        return isinstance(self.transform, CropsInLoader) and self.transform.takes_crops()

    def with_crops(self, crops: LoaderCrops) -> TrainingStream:
        """A copy whose transform draws the two training views with ``crops``.

        Raises:
            TypeError: the transform cannot draw views (``None``, or a function of the user's).
        """
        if not isinstance(self.transform, CropsInLoader):
            raise TypeError(f"loader crops need a transform that draws them (a PhotoTransform), got {self.transform!r}")
        twin = copy.copy(self)
        twin.transform = self.transform.with_crops(crops)
        return twin

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restarts each slot at its saved position (from the positions of consumed batches, all processes).

        Args:
            state: ``{"slots": S, "positions": {"rank/worker": position}}``, as
                :func:`stream_state` makes it.
        """
        self._start = dict(state)

    def source_samples(self) -> Iterator[Any]:
        """The source's samples as a single slot reads them in pass 0, untransformed (to check the first one)."""
        for sample, _ in self._reader.samples(Slot(0, 0, 1, 1), {"pass": 0}):
            yield sample

    def _slot(self) -> Slot:
        info = get_worker_info()
        workers, worker = (1, 0) if info is None else (info.num_workers, info.id)
        return Slot(self.rank, worker, workers, self.world_size)

    def _start_of(self, slot: Slot) -> Position:
        positions = self._start.get("positions", {})
        if not positions:
            return {"pass": 0}
        if self._start.get("slots") != slot.count or slot.name not in positions:
            # Another layout of slots: no position maps onto this slot's part; begin the next pass.
            return {"pass": max(p["pass"] for p in positions.values()) + 1}
        return dict(positions[slot.name])

    def __iter__(self) -> Iterator[StreamItem]:
        slot = self._slot()
        start = self._start_of(slot)
        reported: set[str] = set()  # unreadable samples are named once per slot, not once per pass
        while True:
            yielded = 0
            for item, key, position in self._shuffled(slot, start, reported):
                yielded += 1
                yield StreamItem(item, slot.name, position, key)
            if yielded == 0 and "read" not in start and "state" not in start and "shard" not in start:
                # A fresh pass that gave this slot nothing: its part is empty (fewer shards than workers).
                _LOG.warning("stream slot %s (process/worker) has no samples; it stops", slot.name)
                return
            start = {"pass": start["pass"] + 1}

    def _shuffled(self, slot: Slot, start: Position, reported: set[str]) -> Iterator[tuple[Any, str | None, Position]]:
        """The slot's kept samples of one pass, transformed, in shuffle-buffer order, with keys and positions."""
        rng = np.random.default_rng([self.seed, slot.index, start["pass"], start.get("shard", 0), start.get("read", 0)])
        buffer: list[Any] = []
        position = start
        counter = 0
        for sample, position in self._reader.samples(slot, start):
            if len(buffer) + 1 < self.shuffle_buffer:
                buffer.append(sample)
                continue
            buffer.append(sample)
            chosen = _draw(buffer, rng)
            counter += 1
            item = self._transformed(chosen, slot, counter, position, reported)
            if item is not None:
                yield item, _key_of(chosen), position
        while buffer:
            chosen = _draw(buffer, rng)
            counter += 1
            item = self._transformed(chosen, slot, counter, position, reported)
            if item is not None:
                yield item, _key_of(chosen), position

    def _transformed(self, sample: Any, slot: Slot, counter: int, position: Position, reported: set[str]) -> Any:
        if self.transform is None:
            return sample
        # A distinct index per slot and item for the loader crops' draws.
        index = counter * slot.count + slot.index
        try:
            return self.transform(sample, index, position["pass"])
        except UnreadableImageError as error:
            key = _key_of(sample) or f"#{counter}"
            if key not in reported:
                reported.add(key)
                log_skipped(f"{key} (stream slot {slot.name})", error.reason)
            return None


def _key_of(sample: Any) -> str | None:
    return str(sample["__key__"]) if isinstance(sample, Mapping) and "__key__" in sample else None


def _draw(buffer: list[Any], rng: np.random.Generator) -> Any:
    """Removes and returns a uniformly drawn element of ``buffer`` (swapped to the end first: O(1))."""
    chosen = int(rng.integers(len(buffer)))
    buffer[chosen], buffer[-1] = buffer[-1], buffer[chosen]
    return buffer.pop()
