"""Streams as training data: tar shards, per-slot readers, the shuffled and resumable stream, its progress.

``shards`` reads WebDataset tar shards; ``readers`` decides which samples each
``(process, loader worker)`` slot reads; ``stream`` is
:class:`TrainingStream`; ``progress`` keeps where a stream stands for a checkpoint.
"""

from .progress import StreamBatch, StreamItem, StreamProgress, collate_stream, merge_states, stream_state
from .stream import TrainingStream

__all__ = ["StreamBatch", "StreamItem", "StreamProgress", "TrainingStream", "collate_stream", "merge_states",
           "stream_state"]
