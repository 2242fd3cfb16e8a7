"""What every map-style dataset of photos shares: decoding in the loader, skipping what does not decode, epochs.

:class:`DecodedDataset` reads item ``position``'s raw value (a file's path, a
Hugging Face row, a shard sample), turns it into an image or the two views with
a :class:`~byol_pytorch.data.PhotoTransform` and, for one that does not decode,
reports it once (``skipped unreadable image NAME: REASON`` on the logger
``byol_pytorch.data``), marks it in a mask in shared memory and returns what
``on_unreadable`` says. The mask is shared with ``DataLoader`` worker
processes (forked workers write to the same pages, spawned ones receive a
handle), so what workers met is counted in :attr:`DecodedDataset.skipped_count`
of the dataset in the main process too, and an item met again (another epoch,
another worker) is neither decoded nor reported again.
"""

from __future__ import annotations

import copy
import operator
import weakref
from abc import abstractmethod
from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from ..formats.decode import UnreadableImageError, log_skipped
from ..formats.photo import PhotoTransform
from ..views.crops import CropsInLoader, LoaderCrops

OnUnreadable = Literal["next", "return_none"]


def check_index(index: Any, length: int) -> int:
    """Turns ``index`` into a non-negative int below ``length`` (negatives count back)."""
    try:
        position = operator.index(index)
    except TypeError:
        raise TypeError(f"dataset index must be an integer, got {index!r} of type {type(index).__name__}") from None
    if not -length <= position < length:
        raise IndexError(f"index {position} is out of range for a dataset of length {length}")
    return position % length


class UnreadableReports:
    """Which unreadable items were reported, shared by datasets over the same items: each gets one line.

    Within one dataset the mask in shared memory already keeps an item to one
    line across workers and epochs. Datasets given the same
    ``UnreadableReports`` (the command line's training and evaluation copies
    of one folder) also look at each other's masks, which hold what their
    workers met, and at the items reported in this process, before reporting.
    """

    def __init__(self) -> None:
        self._datasets: weakref.WeakSet[DecodedDataset] = weakref.WeakSet()
        self._reported: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        # A copy sent to a spawned worker keeps what was reported, not the datasets (weak references do not pickle).
        return {"_reported": set(self._reported)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._datasets = weakref.WeakSet()
        self._reported = state["_reported"]

    def join(self, dataset: DecodedDataset) -> None:
        """Counts ``dataset`` among those whose reports are shared."""
        self._datasets.add(dataset)

    def first(self, dataset: DecodedDataset, name: str) -> bool:
        """Whether ``name``, just found unreadable by ``dataset``, is to be reported (and records it if so)."""
        if name in self._reported or any(
            other._unreadable.data_ptr() != dataset._unreadable.data_ptr() and other.marked(name)
            for other in list(self._datasets)
        ):
            return False
        self._reported.add(name)
        return True


class DecodedDataset(Dataset, CropsInLoader):
    """A map-style dataset of photos decoded when read, unreadable ones skipped (see the module's notes).

    Subclasses say where an item's raw value is (:meth:`raw`) and what it is
    called in messages (:meth:`name`).

    Args:
        transform: what each raw value becomes (size, crops, labels).
        length: the number of items.
        on_unreadable: ``"next"`` returns the next readable item instead
            (``index + 1``, wrapping around), so training batches stay full;
            ``"return_none"`` returns ``None`` (for evaluation, which reads
            each item at most once).
        reports: shared with other datasets over the same items, so that an
            unreadable one is reported once among them (default: this
            dataset's own).

    Raises:
        ValueError: an unknown ``on_unreadable``.
    """

    def __init__(self, transform: PhotoTransform, length: int, on_unreadable: OnUnreadable = "next",
                 reports: UnreadableReports | None = None) -> None:
        if on_unreadable not in ("next", "return_none"):
            raise ValueError(f"on_unreadable must be 'next' or 'return_none', got {on_unreadable!r}")
        self.transform, self.on_unreadable = transform, on_unreadable
        # One byte per item, 1 once it failed to decode; the epoch the loader crops are drawn for.
        self._unreadable = torch.zeros(length, dtype=torch.uint8).share_memory_()
        self._epoch = torch.zeros(1, dtype=torch.long).share_memory_()
        self._item_epoch: int | None = None
        self._reports = reports if reports is not None else UnreadableReports()
        self._reports.join(self)

    @abstractmethod
    def raw(self, position: int) -> Any:
        """Item ``position`` as stored, before decoding."""

    def name(self, position: int) -> str:
        """Item ``position``'s name in messages."""
        return f"item {position}"

    def position_of(self, name: str) -> int | None:
        """The position of the item called ``name``, if there is one."""
        return next((i for i in range(len(self)) if self.name(i) == name), None)

    def __len__(self) -> int:
        return len(self._unreadable)

    @property
    def crops(self) -> LoaderCrops | None:
        """The loader crops drawn for training, or ``None`` (the evaluation crop)."""
        return self.transform.crops

    @property
    def image_size(self) -> tuple[int, int]:
        """The ``(height, width)`` of the images (or views)."""
        return self.transform.image_size

    @property
    def resize_ratio(self) -> float:
        """The evaluation crop's resize, relative to ``image_size``."""
        return self.transform.resize_ratio

    def with_crops(self, crops: LoaderCrops) -> Any:
        """A copy that yields the two training views; it shares the items and the unreadable marks."""
        twin = copy.copy(self)
        twin.transform = self.transform.with_crops(crops)
        twin._epoch = torch.zeros(1, dtype=torch.long).share_memory_()
        self._reports.join(twin)
        return twin

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch the loader crops are drawn for (seen by running ``DataLoader`` workers)."""
        self._epoch[0] = int(epoch)

    def set_item_epoch(self, epoch: int | None) -> None:
        """Sets the epoch of the loader crops for the items this process reads next (``None``: :meth:`set_epoch`'s).

        Not shared with ``DataLoader`` workers: a training loader's workers set
        it before every item, from the epoch that comes with the item's index.
        """
        self._item_epoch = None if epoch is None else int(epoch)

    @property
    def skipped_count(self) -> int:
        """Items found unreadable so far, by this process or its ``DataLoader`` workers."""
        return int(self._unreadable.sum())

    @property
    def skipped_indices(self) -> set[int]:
        """Positions of the items found unreadable so far."""
        return set(torch.nonzero(self._unreadable).flatten().tolist())

    def marked(self, name: str) -> bool:
        """Whether the item called ``name`` is one of this dataset's and marked unreadable."""
        position = self.position_of(name)
        return position is not None and bool(self._unreadable[position])

    def _skip(self, position: int, reason: str) -> None:
        # Check, then mark: not atomic, so two workers decoding the same item at the same instant could
        # both report it. Each index is read once per epoch, so that takes a broken item that one worker
        # reaches by its own index while another reaches it scanning past a broken neighbour ("next").
        first = self._unreadable[position].item() == 0
        self._unreadable[position] = 1
        # A dataset sharing the reports (the CLI's evaluation copy) may have reported it already;
        # a twin of with_crops shares this mask and does not count as another.
        if first and self._reports.first(self, self.name(position)):
            log_skipped(self.name(position), reason)

    def _decode(self, position: int, index: int) -> Any:
        """Item ``position`` decoded (its crops drawn as ``index``'s), or ``None`` if it is unreadable."""
        if self._unreadable[position]:
            return None
        epoch = self._item_epoch if self._item_epoch is not None else int(self._epoch[0])
        try:
            return self.transform(self.raw(position), index, epoch)
        except UnreadableImageError as error:
            self._skip(position, error.reason)
            return None

    def _item(self, position: int, image: Any) -> Any:
        """What ``__getitem__`` returns for item ``position`` decoded as ``image``."""
        return image

    def __getitem__(self, index: int) -> Any:
        """Item ``index`` decoded; for an unreadable one, what ``on_unreadable`` says.

        Raises:
            RuntimeError: with ``on_unreadable="next"``, no item decodes.
        """
        length = len(self)
        start = check_index(index, length)
        for offset in range(1 if self.on_unreadable == "return_none" else length):
            position = (start + offset) % length
            image = self._decode(position, start)
            if image is not None:
                return self._item(position, image)
        if self.on_unreadable == "return_none":
            return None
        raise RuntimeError(f"none of the {self._what()} could be decoded; each was reported on stderr with its error")

    def _what(self) -> str:
        """The items, in the message that none decodes."""
        return f"{len(self)} items"
