"""A run's metrics file, ``metrics.jsonl``: one JSON record per line, appended as training goes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import DiskFullError, is_disk_full

METRICS_FILE = "metrics.jsonl"


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
