"""A map-style dataset whose items hold photos of any size (a ``datasets.Dataset``), as images of one size."""

from __future__ import annotations

from typing import Any

import torch

from ..formats.photo import PhotoTransform
from .base import DecodedDataset, OnUnreadable, UnreadableReports


class PhotoDataset(DecodedDataset):
    """A map-style dataset whose items hold photos (a ``datasets.Dataset``), as images of one size.

    Nothing is decoded until an item is read, so a ``DataLoader``'s workers
    decode. An item whose image does not decode is reported once on stderr
    (logger ``byol_pytorch.data``) and, as in
    :class:`~byol_pytorch.data.ImageFolderDataset`, replaced by the next
    readable one (``on_unreadable="next"``) or ``None`` (``"return_none"``,
    for evaluation).

    Args:
        source: anything with ``len()`` and integer indexing whose items hold a photo.
        transform: what each item becomes (its size, key, label, crops).
        on_unreadable: ``"next"`` or ``"return_none"``.
        names: a name per item for messages and listings (default: ``"item N"``).
        labels: every item's label, if known without decoding (evaluation splits read it).
        reports: shared with other datasets over the same items (see
            :class:`~byol_pytorch.data.UnreadableReports`).

    Attributes:
        labels: ``LongTensor`` of the labels, or ``None``.
    """

    def __init__(self, source: Any, transform: PhotoTransform, on_unreadable: OnUnreadable = "next",
                 names: list[str] | None = None, labels: torch.Tensor | None = None,
                 reports: UnreadableReports | None = None) -> None:
        if names is not None and len(names) != len(source):
            raise ValueError(f"names has {len(names)} entries for {len(source)} items; expected one per item")
        self.source, self.names, self.labels = source, names, labels
        super().__init__(transform, len(source), on_unreadable, reports)

    def raw(self, position: int) -> Any:
        """Item ``position`` of the source, undecoded."""
        return self.source[position]

    def name(self, position: int) -> str:
        """Item ``position``'s name in messages: its entry of ``names``, else ``item N``."""
        return self.names[position] if self.names is not None else f"item {position}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(items={len(self)}, transform={self.transform!r})"
