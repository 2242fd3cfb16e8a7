"""A run's metrics file, ``metrics.jsonl``: one JSON record per line, appended as training goes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .checkpoint import atomic_write
from .errors import DiskFullError, is_disk_full

METRICS_FILE = "metrics.jsonl"
# Records of a stopped run past the step its successor resumed from.
SUPERSEDED_FILE = "metrics.superseded.jsonl"


def load_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of a run folder's ``metrics.jsonl`` (empty if there is none)."""
    path = Path(run_dir) / METRICS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def append_metrics(run_dir: str | Path, record: dict[str, Any]) -> None:
    """Appends one record to the run folder's ``metrics.jsonl``.

    Raises:
        DiskFullError: the disk is full (the lines written before are intact).
    """
    path = Path(run_dir) / METRICS_FILE
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    except OSError as err:
        if is_disk_full(err):
            raise DiskFullError.writing(path) from err
        raise


def set_aside_records_after(run_dir: str | Path, step: int) -> int:
    """Moves the records of steps after ``step`` from ``metrics.jsonl`` to ``metrics.superseded.jsonl``.

    A run resumed from the checkpoint of ``step`` writes those steps again;
    moving the stopped run's records aside keeps each step once in
    ``metrics.jsonl`` (the rewrite is atomic). A line that is not JSON (a
    write cut short by a kill) is moved aside too.

    Returns:
        The number of lines moved.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return 0
    kept, moved = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            keep = int(json.loads(line).get("step", 0)) <= step
        except (ValueError, AttributeError, TypeError):
            keep = False
        (kept if keep else moved).append(line)
    if not moved:
        return 0
    with open(Path(run_dir) / SUPERSEDED_FILE, "a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in moved))
    atomic_write(path, lambda handle: handle.write("".join(line + "\n" for line in kept).encode()))
    return len(moved)
