"""The one path from a dataset to the learner: where the next images come from, the loader, and the views.

Training reads a map-style dataset as one endless sequence of positions.
Position ``p`` is image ``permutation(epoch)[p % len]`` of epoch
``p // len``, the permutation being a pure function of ``(seed, epoch)``.
Each batch takes the next ``batch_size x num_processes`` positions; process
``i`` reads the ``i``-th run of ``batch_size`` of them. So:

* the loader never ends, and its workers read ahead across an epoch boundary
  instead of draining and starting again;
* a run's place in the data is one number, the images consumed so far by all
  processes together. A run resumed from it, with any number of processes or
  any batch size, reads each remaining image of that epoch exactly once;
* every item carries its epoch, so loader-side crops drawn from ``(seed,
  epoch, index)`` do not depend on which worker reads the item, or when.

:class:`TrainingData` is the only place that knows the kinds of batches
(images, loader-cropped views, views still JPEG-encoded); the trainer gets a
:class:`LearnerInput` to pass to the learner.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..datasets.base import DecodedDataset
from ..formats.items import IMAGE_KEY
from ..formats.tensors import collate_images
from ..streams.progress import StreamBatch, StreamProgress, collate_stream, merge_states
from ..streams.stream import TrainingStream
from ..views.crops import CroppedViews, LoaderCrops, collate_views
from ..views.gpu_decode import EncodedBatch, collate_encoded, decode_views
from .prepare import prepare_dataset, takes_loader_crops


class SpanningSampler(Sampler[tuple[int, int]]):
    """``(epoch, index)`` pairs for one process, from global position ``start`` on, without end.

    Args:
        length: images in the dataset (one epoch).
        batch_size: images per batch of this process.
        num_processes: processes reading the data together.
        process_index: this process's rank.
        seed: the permutation of epoch ``e`` is drawn from ``(seed, e)``.
        start: images consumed by all processes before this sampler's first batch.

    Raises:
        ValueError: a size or rank out of range (the message names it).
    """

    def __init__(self, length: int, batch_size: int, num_processes: int, process_index: int, seed: int,
                 start: int = 0) -> None:
        for name, value, low in (("length", length, 1), ("batch_size", batch_size, 1),
                                 ("num_processes", num_processes, 1), ("start", start, 0)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer of at least {low}, got {value!r}")
        if not 0 <= process_index < num_processes:
            raise ValueError(f"process_index must lie in [0, {num_processes}), got {process_index!r}")
        self.length, self.batch_size, self.seed, self.start = length, batch_size, seed, start
        self.num_processes, self.process_index = num_processes, process_index
        self._cached: tuple[int, np.ndarray] | None = None

    def permutation(self, epoch: int) -> np.ndarray:
        """The order in which epoch ``epoch`` reads the dataset (the same on every process)."""
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, np.random.default_rng((self.seed, epoch)).permutation(self.length))
        return self._cached[1]

    def at(self, position: int) -> tuple[int, int]:
        """The ``(epoch, index)`` of global position ``position``."""
        epoch, offset = divmod(position, self.length)
        return epoch, int(self.permutation(epoch)[offset])

    def __iter__(self) -> Iterator[tuple[int, int]]:
        chunk = self.batch_size * self.num_processes
        first = self.start + self.process_index * self.batch_size
        for batch in itertools.count():
            begin = first + batch * chunk
            for position in range(begin, begin + self.batch_size):
                yield self.at(position)


class _EpochItems(Dataset):
    """Reads ``dataset[index]`` for an ``(epoch, index)`` key; datasets with loader crops draw that epoch's crops."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.by_epoch = isinstance(dataset, DecodedDataset) and dataset.crops is not None

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if self.by_epoch:
            self.dataset.set_item_epoch(epoch)
        return self.dataset[index]


@dataclass
class LearnerInput:
    """One batch as the learner takes it: ``learner(**arguments)``, ``count`` images (this process)."""

    arguments: dict[str, Any]
    count: int


def _images_input(batch: torch.Tensor, device: torch.device) -> LearnerInput:
    return LearnerInput({"x": batch.to(device, non_blocking=True)}, batch.shape[0])


def _views_input(batch: CroppedViews, device: torch.device) -> LearnerInput:
    views = CroppedViews(*(view.to(device, non_blocking=True) for view in batch))
    return LearnerInput({"views": views}, views[0].shape[0])


class TrainingData:
    """The training loader of ``dataset`` and the learner's input of each of its batches.

    A map-style dataset is read by a :class:`SpanningSampler` from a global
    position; a stream (an ``IterableDataset`` of any kind, tar shards as a
    :class:`~byol_pytorch.data.TrainingStream`) is read as this process's
    part of it, from the positions of :meth:`load_state_dict`, with no length.
    Items holding photos of any size (PIL images, encoded bytes: Hugging Face
    rows, shard samples) are decoded and sized in the workers
    (:func:`~byol_pytorch.data.pipeline.prepare.prepare_dataset`).

    Args:
        dataset: a map-style dataset or a stream of images (any item :func:`collate_images` takes, dicts
            holding the image under ``image_key`` included).
        batch_size: images per batch and process.
        num_processes: processes training together.
        process_index: this process's rank.
        seed: the data order and the loader crops follow from it.
        num_workers: loader worker processes.
        device: where batches go.
        crops: crop both views in the loader workers (uint8 to the device), where
            the dataset holds photos (:func:`~byol_pytorch.data.pipeline.prepare.takes_loader_crops`:
            folders, Hugging Face rows, shards, streams of PIL images); tensors
            and arrays, and every dataset with ``None``, are sent whole.
        image_size: the views' size: photos are sized to it, and JPEG-encoded views decoded on the device.
        image_key: the key of a dict item's image.
        shuffle_buffer: a stream's samples per loader worker to draw its order from.

    Raises:
        ValueError: the dataset holds fewer images than one batch of all processes, or none.
        NoImageInItemError: dict items without an image (the message lists their keys).
        TypeError: items that are no kind of image (the message names their type).
    """

    def __init__(self, dataset: Any, *, batch_size: int, num_processes: int, process_index: int, seed: int,
                 num_workers: int, device: torch.device, crops: LoaderCrops | None = None,
                 image_size: tuple[int, int] | None = None, image_key: str | None = IMAGE_KEY,
                 shuffle_buffer: int = 1000) -> None:
        prepared = prepare_dataset(dataset, image_size=image_size, image_key=image_key, rank=process_index,
                                   world_size=num_processes, seed=seed, shuffle_buffer=shuffle_buffer)
        self.stream = prepared if isinstance(prepared, TrainingStream) else None
        length = None if self.stream is not None else len(prepared)  # type: ignore[arg-type]
        if length is not None and length < batch_size * num_processes:
            raise ValueError(f"the dataset has {length} images, fewer than one batch "
                             f"({batch_size} per process x {num_processes} processes)")
        if crops is not None and not takes_loader_crops(prepared):
            crops = None  # tensors and arrays are sent whole; the learner crops them on the device
        if crops is not None:
            prepared = prepared.with_crops(crops)  # type: ignore[union-attr]
            self.stream = prepared if self.stream is not None else None
        self.dataset, self.length = prepared, length
        # Where the stream stands: the positions of the batches consumed (streams only).
        self.progress = StreamProgress(num_processes * max(num_workers, 1)) if self.stream is not None else None
        self._stream_start: dict[str, Any] = {}
        self.batch_size, self.num_processes, self.process_index = batch_size, num_processes, process_index
        self.seed, self.num_workers, self.device, self.image_size = seed, num_workers, device, image_size
        self.image_key = image_key
        encoded = crops is not None and crops.encoded_jpegs
        self._collate, self._to_input = self._kind(crops is not None, encoded)

    def _kind(self, cropped: bool, encoded: bool) -> tuple[Callable[[Any], Any], Callable[[Any], LearnerInput]]:
        """How the workers batch items, and how a batch becomes the learner's input."""
        if encoded:  # compressed files stay on the host: the decoder reads them from there
            return collate_encoded, self._decoded_input
        if cropped:
            return collate_views, lambda batch: _views_input(batch, self.device)
        return partial(collate_images, image_key=self.image_key), lambda batch: _images_input(batch, self.device)

    def _decoded_input(self, batch: EncodedBatch) -> LearnerInput:
        assert self.image_size is not None, "encoded views need the image size"
        return _views_input(decode_views(batch, self.image_size, self.device), self.device)

    @property
    def images_per_batch(self) -> int:
        """Positions one batch of every process consumes together."""
        return self.batch_size * self.num_processes

    def epoch_of(self, position: int) -> int:
        """The epoch that global position ``position`` lies in (a stream: the earliest pass of its consumed slots)."""
        if self.length is None:
            assert self.progress is not None
            return min((int(p["pass"]) for p in self.progress.positions.values()), default=0)
        return position // self.length

    def state_dict(self) -> dict[str, Any] | None:
        """A stream's positions in this process (``None`` for a map-style dataset: its place is ``images_seen``)."""
        return self.progress.state_dict() if self.progress is not None else None

    def load_state_dict(self, states: list[dict[str, Any]] | dict[str, Any] | None) -> None:
        """Restarts a stream at the positions saved: every process's :meth:`state_dict`, or them merged."""
        if self.stream is None or not states:
            return
        merged = merge_states(states) if isinstance(states, list) else states
        self._stream_start = merged
        assert self.progress is not None
        # The slots of this process start where they were: a checkpoint made before any new batch keeps them.
        mine = f"{self.process_index}/"
        self.progress.positions = {k: dict(v) for k, v in merged.get("positions", {}).items() if k.startswith(mine)}

    def loader(self, start: int) -> DataLoader:
        """This process's batches from global position ``start`` on, without end (a stream: from its positions)."""
        if self.stream is not None:
            self.stream.load_state_dict(self._stream_start)
            return DataLoader(self.stream, batch_size=self.batch_size,
                              collate_fn=partial(collate_stream, collate=self._collate), num_workers=self.num_workers,
                              pin_memory=self.device.type == "cuda")
        sampler = SpanningSampler(self.length, self.batch_size, self.num_processes, self.process_index,
                                  self.seed, start)
        return DataLoader(
            _EpochItems(self.dataset), batch_size=self.batch_size, sampler=sampler, collate_fn=self._collate,
            num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.seed),
        )

    def learner_input(self, batch: Any) -> LearnerInput:
        """A loader batch as the learner takes it, on the device (a stream's batch: its positions recorded)."""
        if isinstance(batch, StreamBatch):
            assert self.progress is not None
            batch = self.progress.consume(batch)
        return self._to_input(batch)
