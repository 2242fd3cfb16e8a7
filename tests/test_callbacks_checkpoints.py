"""Checkpoint callbacks: saved when due, with the options; a resume with other options says which."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from byol_pytorch import BYOLTrainer, MockDataset, TrainerCallback
from byol_pytorch.checkpoint import list_checkpoints, safe_load
from byol_pytorch.errors import DiskFullError
from byol_pytorch.training.callbacks.base import TrainerControl
from byol_pytorch.training.callbacks.checkpoints import SaveCheckpoints, disk_full, refuse_existing_run

from .conftest import tiny_cnn

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")
FAST = {"hidden_layer": "flatten", "projection_size": 8, "projection_hidden_size": 16, "num_workers": 0,
        "mixed_precision": "no", "progress": False, "batch_size": 4, "checkpoint_every": 2}


class Saves(TrainerCallback):
    def __init__(self) -> None:
        self.paths: list = []

    def on_save(self, trainer, state, control, **kwargs):
        self.paths.append((state.step, kwargs["checkpoint"]))


def _trainer(run: Path, steps: int, **options) -> BYOLTrainer:
    torch.manual_seed(0)
    return BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, output_dir=str(run), num_train_steps=steps,
                       **{**FAST, **options})


def test_a_checkpoint_is_written_only_when_due_and_announced(tmp_path: Path) -> None:
    saves = Saves()
    trainer = _trainer(tmp_path / "run", 4, callbacks=[saves])
    SaveCheckpoints().on_step_end(trainer, trainer.state, TrainerControl())
    assert list_checkpoints(tmp_path / "run") == [] and saves.paths == []
    SaveCheckpoints().on_step_end(trainer, trainer.state, TrainerControl(should_save=True))
    assert saves.paths == [(0, tmp_path / "run" / "checkpoint-00000000.pt")] == [(0, trainer.state.checkpoint)]


def test_a_resume_with_another_crop_scale_warns_and_the_checkpoint_holds_it(tmp_path: Path) -> None:
    _trainer(tmp_path / "run", 2, crop_scale=(0.5, 1.0))()
    assert safe_load(tmp_path / "run" / "checkpoint-00000002.pt")["config"]["crop_scale"] == (0.5, 1.0)
    with pytest.warns(UserWarning, match=r"resuming step 2 with crop_scale \(0.3, 1.0\) instead of \(0.5, 1.0\)"):
        _trainer(tmp_path / "run", 3, crop_scale=(0.3, 1.0), resume=True)()


def test_an_existing_run_is_not_overwritten_and_a_full_disk_names_the_checkpoint_to_resume_from(
        tmp_path: Path) -> None:
    refuse_existing_run(tmp_path, False)  # nothing there yet
    (tmp_path / "checkpoint-00000004.pt").write_bytes(b"")
    refuse_existing_run(tmp_path, True)
    with pytest.raises(FileExistsError, match="already holds checkpoints; pass resume=True"):
        refuse_existing_run(tmp_path, False)
    err = disk_full(DiskFullError("no space left", tmp_path / "net.pt"), 7, tmp_path)
    assert str(err).endswith(f"at step 7; the last intact checkpoint is {tmp_path / 'checkpoint-00000004.pt'}; "
                             "free some space and resume from it")
    assert err.path == tmp_path / "net.pt"
