"""Trackers for real: TensorBoard event files read back, and a tracker that cannot run refused up front."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from byol_pytorch import BYOLTrainer, MockDataset
from byol_pytorch.cli import main
from byol_pytorch.metrics import load_metrics
from byol_pytorch.trackers import check_trackers

from .conftest import tiny_cnn

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


class Labelled(MockDataset):
    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return super().__getitem__(index), index % 2


def read_scalars(run: Path) -> dict[str, dict[int, float]]:
    """Every scalar of the TensorBoard event files under ``run``, by tag and step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(run.rglob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file under {run}"
    scalars: dict[str, dict[int, float]] = {}
    for file in files:
        events = EventAccumulator(str(file))
        events.Reload()
        for tag in events.Tags()["scalars"]:
            scalars.setdefault(tag, {}).update({e.step: e.value for e in events.Scalars(tag)})
    return scalars


def test_tensorboard_receives_every_metric_of_metrics_jsonl(tmp_path: Path) -> None:
    run = tmp_path / "run"
    torch.manual_seed(0)
    trainer = BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, eval_dataset=Labelled(16, 12), knn_every=2,
                          log_with="tensorboard", hidden_layer="flatten", projection_size=8,
                          projection_hidden_size=16, num_workers=0, mixed_precision="no", progress=False,
                          log_every=1, batch_size=4, num_train_steps=4, output_dir=str(run))
    trainer()
    scalars = read_scalars(run)
    records = load_metrics(run)
    for key in ("loss", "lr", "tau", "representation_std", "knn_top1"):
        expected = {r["step"]: r[key] for r in records if key in r}
        assert expected, key
        assert scalars[key].keys() == expected.keys(), key
        assert all(scalars[key][step] == pytest.approx(value, rel=1e-6) for step, value in expected.items()), key
    assert sorted(scalars["loss"]) == [1, 2, 3, 4] and sorted(scalars["knn_top1"]) == [2, 4]


def test_an_unknown_tracker_or_a_missing_package_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import accelerate.utils

    check_trackers(None)
    check_trackers("tensorboard")
    with pytest.raises(ValueError, match="log_with 'tensorbored' is not a tracker accelerate knows; expected"):
        check_trackers("tensorbored")
    monkeypatch.setattr(accelerate.utils, "is_wandb_available", lambda: False)
    with pytest.raises(ValueError, match="log_with 'wandb' needs the wandb package, which is not installed: "
                                         "pip install wandb"):
        check_trackers(["tensorboard", "wandb"])


def test_trainer_and_command_line_refuse_a_tracker_that_cannot_run_before_training(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import accelerate.utils

    monkeypatch.setattr(accelerate.utils, "is_tensorboard_available", lambda: False)
    with pytest.raises(ValueError, match="pip install tensorboard"):
        BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, hidden_layer="flatten", log_with="tensorboard",
                    output_dir=str(tmp_path / "lib"))
    assert not (tmp_path / "lib").exists()
    code = main(["train", "--log-with", "tensorboard", "--steps", "2", "--out", str(tmp_path / "cli")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err == ("byol-pytorch: error: --log-with 'tensorboard' needs the tensorboard package, which is not "
                   "installed: pip install tensorboard")
    assert not (tmp_path / "cli").exists()


def test_command_line_log_with_tensorboard_writes_an_event_file(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", "--log-with", "tensorboard", "--steps", "2", "--batch-size", "8", "--image-size", "16",
                 "--num-workers", "0", "--projection-hidden-size", "32", "--knn-every", "2", "--log-every", "1",
                 "--mixed-precision", "no", "--threads", "1", "--no-small-image-stem", "--no-progress",
                 "--no-final-eval", "--out", str(run)]) == 0
    scalars = read_scalars(run)
    assert sorted(scalars["loss"]) == [1, 2] and sorted(scalars["knn_top1"]) == [2]
    assert {"lr", "tau", "representation_std"} <= scalars.keys()
