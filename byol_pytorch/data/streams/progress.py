"""A stream's batches and where the stream stands: the positions of the batches training consumed.

Every item a :class:`~byol_pytorch.data.TrainingStream` yields carries its
slot's position; a batch keeps each slot's last one, and the positions of the
batches consumed are what a checkpoint saves (see :mod:`byol_pytorch.data.streams.stream`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .readers import Position


class StreamItem(NamedTuple):
    """One item of a stream as the loader receives it.

    Attributes:
        item: the sample, transformed.
        slot: ``"rank/worker"`` of the slot that read it.
        position: the slot's position after it (what a resume restarts from).
        key: the sample's ``__key__`` (shards, dict items that have one), else ``None``.
    """

    item: Any
    slot: str
    position: Position
    key: str | None = None


class StreamBatch(NamedTuple):
    """A batch of stream items.

    Attributes:
        batch: the items collated.
        positions: the position of each slot the items came from, after its last item.
        keys: ``(key, pass)`` of each item, in batch order (``key`` ``None`` where samples have none).
    """

    batch: Any
    positions: dict[str, Position]
    keys: list[tuple[str | None, int]]


def collate_stream(items: Sequence[StreamItem], collate: Callable[[list[Any]], Any]) -> StreamBatch:
    """Collates the items of a stream with ``collate`` and keeps each slot's last position.

    Args:
        items: ``StreamItem`` s, as :class:`TrainingStream` yields them.
        collate: the collate function of the items themselves (``collate_images``, ``collate_views``...).
    """
    positions = {item.slot: item.position for item in items}
    keys = [(item.key, int(item.position["pass"])) for item in items]
    return StreamBatch(collate([item.item for item in items]), positions, keys)


def stream_state(positions: dict[str, Position], slots: int) -> dict[str, Any]:
    """The state a checkpoint saves: the positions of the consumed batches' slots, and how many slots there were."""
    return {"slots": int(slots), "positions": {name: dict(p) for name, p in sorted(positions.items())}}


class StreamProgress:
    """Where a process's stream stands: the positions of the batches training consumed (main loop side).

    Args:
        slots: slots of all processes (``world_size x max(num_workers, 1)``), saved with the positions.
    """

    def __init__(self, slots: int) -> None:
        self.slots = int(slots)
        self.positions: dict[str, Position] = {}

    def consume(self, batch: StreamBatch) -> Any:
        """Records a batch's positions as consumed; returns its collated items."""
        self.positions.update(batch.positions)
        return batch.batch

    def state_dict(self) -> dict[str, Any]:
        """This process's part of the stream's state (merge the processes' with :func:`merge_states`)."""
        return stream_state(self.positions, self.slots)


def merge_states(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One stream state from every process's (their slots are disjoint)."""
    merged: dict[str, Position] = {}
    for state in states:
        merged.update(state.get("positions", {}))
    return stream_state(merged, states[0]["slots"] if states else 0)

