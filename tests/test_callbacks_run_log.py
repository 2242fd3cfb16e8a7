"""RunLog: device sums read only on the steps that log, each record in metrics.jsonl and the trackers."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from byol_pytorch import ImageFolderDataset
from byol_pytorch.training.callbacks.base import TrainerControl, TrainerState
from byol_pytorch.training.callbacks.run_log import RunLog, skipped_files_note

from .conftest import OneProcessAccelerator


class _Trainer(SimpleNamespace):
    """The trainer's log(): the history, then the callback's on_log."""

    def log(self, logs: dict) -> None:
        self.state.log_history.append(logs)
        self.run_log.on_log(self, self.state, TrainerControl(), logs=logs)


def _batch(run_log: RunLog, trainer: _Trainer, loss: float, spread: float) -> None:
    trainer.state.batch_images, trainer.state.batch_wait_s = 4, 0.5
    output = SimpleNamespace(loss=torch.tensor(loss), representation_std=torch.tensor(spread))
    run_log.on_batch_end(trainer, trainer.state, TrainerControl(), output=output)


def test_a_line_averages_the_batches_since_the_last_and_goes_to_every_sink(tmp_path) -> None:
    run_log = RunLog(tmp_path / "run", log_with="tensorboard", progress=False, config={"seed": 3, "mean": None})
    state = TrainerState(max_steps=4, lr=0.1, tau=0.99)
    trainer = _Trainer(accelerator=OneProcessAccelerator(), state=state, run_log=run_log)
    run_log.on_train_begin(trainer, state, TrainerControl())
    assert trainer.accelerator.tracked == ("byol", {"seed": 3})  # plain values only
    _batch(run_log, trainer, 1.0, 0.2)
    _batch(run_log, trainer, 3.0, 0.4)
    state.step = 1
    run_log.on_step_end(trainer, state, TrainerControl())  # not due: nothing read or written
    assert state.log_history == []
    state.step = 2
    run_log.on_step_end(trainer, state, TrainerControl(should_log=True))
    (record,) = state.log_history
    assert (record["step"], record["loss"], record["images"], record["data_wait_s"]) == (2, 2.0, 8, 1.0)
    assert record["representation_std"] == pytest.approx(0.3) and (record["lr"], record["tau"]) == (0.1, 0.99)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["loss"] for line in lines] == [2.0]
    assert trainer.accelerator.logged[0][0] == 2 and "step" not in trainer.accelerator.logged[0][1]
    run_log.on_train_end(trainer, state, TrainerControl())
    assert run_log.bar is None


def test_the_skipped_files_note_counts_a_datasets_unreadable_images() -> None:
    data = SimpleNamespace(dataset=SimpleNamespace(skipped_count=2), length=10)
    assert skipped_files_note(data, object()) == ("2 of the 10 images could not be read and were skipped (each "
                                                  "named above when first met); training used the other 8")
    folder = ImageFolderDataset.__new__(ImageFolderDataset)  # only its type matters here
    assert "10 image files" in skipped_files_note(data, folder)
    assert skipped_files_note(SimpleNamespace(dataset=data.dataset, length=None), folder) is None  # a stream
