"""The run report: curves from metrics.jsonl records, drawn without a display."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from byol_pytorch.report import draw_report, load_metrics, series


def _metrics(steps: int = 30) -> list[dict]:
    records = []
    for step in range(5, steps + 1, 5):
        records.append({"step": step, "loss": 4.0 / step, "representation_std": 0.03, "lr": 3e-4 * (1 - step / steps),
                        "tau": 0.99 + 0.01 * step / steps, "images_per_second": 100.0, "time": 0.0})
        if step % 10 == 0:
            records.append({"step": step, "knn_top1": 0.5 + step / 100, "time": 0.0})
    return records


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 100


def test_full_report_is_a_png(tmp_path: Path) -> None:
    summary = {"knn_top1": {"trained": 0.95, "random_init": 0.9},
               "linear_probe_top1": {"trained": 0.97, "random_init": 0.96}, "eval_data_description": "digits"}
    out = draw_report(_metrics(), tmp_path / "deeper" / "report.png", representation_dim=512, summary=summary,
                      title="a run")
    assert out == tmp_path / "deeper" / "report.png"
    _assert_png(out)


@pytest.mark.parametrize(
    "records",
    [
        [],
        [{"step": 1, "loss": 2.0}],  # one point, nothing else
        [{"step": 2, "knn_top1": 0.4}, {"step": 4, "knn_top1": 0.6}],  # monitor only
        [{"loss": 1.0}, {"step": "x", "loss": 1.0}, "not a dict", {"step": 3, "loss": float("nan")}],  # junk
        [{"step": 1, "loss": True, "lr": None, "tau": "0.99"}],  # wrong types are skipped
    ],
)
def test_missing_or_odd_keys_still_draw(tmp_path: Path, records: list) -> None:
    _assert_png(draw_report(records, tmp_path / "r.png", representation_dim=None, summary={"knn_top1": 0.3}))


def test_series_sorts_skips_and_keeps_the_last_of_a_repeated_step() -> None:
    records = [{"step": 20, "loss": 2.0}, {"step": 10, "loss": 1.0}, {"step": 10, "knn_top1": 0.5},
               {"step": 20, "loss": 3.0}, {"step": 30, "loss": math.inf}]
    assert series(records, "loss") == ([10, 20], [1.0, 3.0])
    assert series(records, "knn_top1") == ([10], [0.5])
    assert series(records, "tau") == ([], [])


def test_load_metrics_reads_a_run_folder(tmp_path: Path) -> None:
    assert load_metrics(tmp_path) == []
    records = _metrics(10)
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + "\n")
    assert load_metrics(tmp_path) == records
    _assert_png(draw_report(load_metrics(tmp_path), tmp_path / "report.png"))


def test_drawing_leaves_pyplot_alone(tmp_path: Path) -> None:
    import matplotlib

    backend = matplotlib.get_backend()
    draw_report(_metrics(), tmp_path / "r.png")
    assert matplotlib.get_backend() == backend
    if "matplotlib.pyplot" in __import__("sys").modules:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def _near(pixels: np.ndarray, colour: str) -> np.ndarray:
    """Mask of the pixels within a few levels of a matplotlib colour (antialiased edges are left out)."""
    from matplotlib.colors import to_rgb

    target = np.array([round(255 * c) for c in to_rgb(colour)], dtype=np.int16)
    return (np.abs(pixels - target) <= 3).all(axis=-1)


def test_the_loss_curve_is_drawn_in_its_panel(tmp_path: Path) -> None:
    # Records with a loss and nothing else: the only curve of the page is the
    # loss panel's (top left of the 2 x 3 grid), in matplotlib's first colour.
    records = [{"step": step, "loss": 4.0 / step} for step in range(1, 40)]
    loss_only = _pixels(draw_report(records, tmp_path / "loss.png"))
    blank = _pixels(draw_report([], tmp_path / "blank.png"))
    curve = _near(loss_only, "tab:blue")
    assert not _near(blank, "tab:blue").any()
    assert curve.sum() > 100
    rows, cols = np.nonzero(curve)
    height, width = curve.shape
    assert rows.max() < height / 2 and cols.max() < width / 2  # the top-left panel, not the others
    assert len(np.unique(loss_only.reshape(-1, 3), axis=0)) > len(np.unique(blank.reshape(-1, 3), axis=0))


def test_different_metrics_give_different_pictures(tmp_path: Path) -> None:
    rising = [{**r, "loss": r["loss"] * r["step"]} if "loss" in r else r for r in _metrics()]
    first = _pixels(draw_report(_metrics(), tmp_path / "a.png"))
    again = _pixels(draw_report(_metrics(), tmp_path / "b.png"))
    other = _pixels(draw_report(rising, tmp_path / "c.png"))
    assert (first == again).all()
    assert (first != other).any(axis=-1).sum() > 100
