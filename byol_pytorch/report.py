"""A one-page picture of a training run: loss, schedules, collapse monitor and kNN accuracy.

:func:`draw_report` turns the records of ``metrics.jsonl`` (see
:func:`byol_pytorch.metrics.load_metrics`) into a PNG with matplotlib's
Agg renderer (no pyplot, no display needed).
Every panel plots only the records that carry its key; a panel with nothing
to show says so instead of failing, so a run cut short, a run without a kNN
monitor, or an older metrics file all still give a readable page.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .health import COLLAPSE_FRACTION
from .metrics import load_metrics

__all__ = ["draw_report", "load_metrics", "series"]


def series(metrics: Iterable[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """The ``(steps, values)`` of every record holding a finite number under ``key``.

    Sorted by step. When a step appears more than once (a run resumed from an
    earlier checkpoint logs those steps again) the last record wins.
    """
    by_step: dict[int, float] = {}
    for record in metrics:
        if not isinstance(record, Mapping):
            continue
        step, value = record.get("step"), record.get(key)
        if isinstance(step, bool) or isinstance(value, bool):
            continue
        if not isinstance(step, (int, float)) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(float(value)):
            continue
        by_step[int(step)] = float(value)
    steps = sorted(by_step)
    return steps, [by_step[s] for s in steps]


def _empty(ax: Any, title: str, why: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, color="0.45")
    ax.set_xticks([])
    ax.set_yticks([])


def _line(ax: Any, metrics: list[Mapping[str, Any]], key: str, title: str, ylabel: str,
          log: bool = False, marker: str | None = None) -> bool:
    steps, values = series(metrics, key)
    if not steps:
        _empty(ax, title, f"no '{key}' recorded")
        return False
    ax.plot(steps, values, marker=marker or ("o" if len(steps) < 3 else None), lw=1.6)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if log and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    return True


def _final_scores(ax: Any, summary: Mapping[str, Any] | None, metrics: list[Mapping[str, Any]]) -> None:
    """Bars of trained vs random-init accuracy; throughput when there is no evaluation."""
    rows = _score_rows(summary)
    if rows:
        import numpy as np

        names = list(rows)
        trained = [rows[n][0] for n in names]
        random_init = [rows[n][1] for n in names]
        x = np.arange(len(names))
        width = 0.38
        bars_t = ax.bar(x - width / 2, trained, width, label="trained", color="tab:blue")
        bars_r = ax.bar(x + width / 2, random_init, width, label="random init", color="tab:gray")
        for bars in (bars_t, bars_r):
            for bar in bars:
                height = bar.get_height()
                if math.isfinite(height):
                    ax.annotate(f"{height:.3f}", (bar.get_x() + bar.get_width() / 2, height),
                                ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(x, names)
        low = min(v for v in trained + random_init if math.isfinite(v))
        ax.set_ylim(max(0.0, low - 0.15), 1.12)  # room above the bars for the legend
        ax.set_yticks([t for t in ax.get_yticks() if t <= 1.0 + 1e-9])
        ax.set_ylabel("top-1 accuracy")
        ax.set_title("held-out accuracy")
        described = summary.get("eval_data_description") if summary else None
        if described:
            ax.set_xlabel(textwrap.fill(str(described), 60), fontsize=8)
        ax.legend(loc="upper center", ncol=2, fontsize=8)
        ax.grid(alpha=0.3, axis="y")
        return
    _line(ax, metrics, "images_per_second", "throughput", "images / s")


def _score_rows(summary: Mapping[str, Any] | None) -> dict[str, tuple[float, float]]:
    if not summary:
        return {}
    rows = {}
    for key, label in (("knn_top1", "kNN top-1"), ("linear_probe_top1", "linear probe")):
        value = summary.get(key)
        if isinstance(value, Mapping):
            trained, random_init = value.get("trained"), value.get("random_init")
            if isinstance(trained, (int, float)) and isinstance(random_init, (int, float)):
                rows[label] = (float(trained), float(random_init))
    return rows


def _collapse_panel(ax: Any, metrics: list[Mapping[str, Any]], representation_dim: int | None) -> None:
    """The representation std over steps, with the healthy level and the warning threshold for width d."""
    if not _line(ax, metrics, "representation_std", "collapse monitor", "std of l2-normalised features"):
        return
    if representation_dim:
        healthy = 1 / math.sqrt(representation_dim)
        ax.axhline(healthy, color="tab:green", ls="--", lw=1, label=f"healthy 1/sqrt({representation_dim})")
        ax.axhline(COLLAPSE_FRACTION * healthy, color="tab:red", ls=":", lw=1, label="collapse warning")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, loc="lower right")


def _accuracy_panel(ax: Any, metrics: list[Mapping[str, Any]], summary: Mapping[str, Any] | None) -> None:
    """kNN top-1 over steps (with the random initialisation's level) and the online probe's, when recorded."""
    probe_steps, probe_values = series(metrics, "probe_top1")
    knn = bool(series(metrics, "knn_top1")[0])
    # Without kNN records but with the probe's, the panel is the probe's alone (no "no knn_top1" note).
    if (knn or not probe_steps) and _line(ax, metrics, "knn_top1", "kNN top-1 (monitor)", "accuracy", marker="o"):
        baseline = summary.get("knn_monitor_random_init") if summary else None
        if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
            ax.axhline(baseline, color="tab:gray", ls="--", lw=1, label=f"random init ({baseline:.3f})")
            ax.legend(fontsize=8, loc="lower right")
        ax.set_ylim(0, 1.02)
    if probe_steps:
        ax.plot(probe_steps, probe_values, marker="s", lw=1.6, color="tab:orange", label="online linear probe")
        ax.set_title("kNN top-1 and online linear probe" if knn else "online linear probe top-1")
        ax.set_xlabel("step")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")


def draw_report(
    metrics: Iterable[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    representation_dim: int | None = None,
    summary: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> Path:
    """Draws the training curves of a run into a PNG file.

    Panels: loss; learning rate; EMA decay tau; the collapse monitor (the std
    of the l2-normalised representations) with the healthy ``1/sqrt(d)`` line
    and the warning threshold when ``representation_dim`` is given; kNN top-1
    over steps (with the random initialisation's level when ``summary`` has
    ``knn_monitor_random_init``); and the final trained-vs-random-init accuracies when
    ``summary`` holds them (else throughput).

    Args:
        metrics: records as in ``metrics.jsonl``: dicts with ``step`` and any of
            ``loss``, ``lr``, ``tau``, ``representation_std``, ``knn_top1``,
            ``images_per_second``. Missing keys leave their panel empty.
        path: the PNG to write (its folder is created).
        representation_dim: width d of the representation, for the healthy line.
        summary: a dict like ``summary.json`` of ``byol-pytorch train``:
            ``{"knn_top1": {"trained": .., "random_init": ..},
            "linear_probe_top1": {...}}``.
        title: the figure title.

    Returns:
        The path written.
    """
    # A bare Figure renders with Agg and is never registered with pyplot, so
    # no display is needed, the caller's backend is left alone and nothing leaks.
    from matplotlib.figure import Figure

    records = [r for r in metrics if isinstance(r, Mapping)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    fig = Figure(figsize=(13, 7.5), dpi=100, layout="constrained")
    axes = fig.subplots(2, 3)
    _line(axes[0, 0], records, "loss", "BYOL loss", "loss")
    _line(axes[0, 1], records, "lr", "learning rate", "lr")
    _line(axes[0, 2], records, "tau", "target EMA decay (tau)", "tau")

    _collapse_panel(axes[1, 0], records, representation_dim)
    _accuracy_panel(axes[1, 1], records, summary)
    _final_scores(axes[1, 2], summary, records)
    if title:
        fig.suptitle(title)
    fig.savefig(path, format="png")
    return path
