"""OnlineProbing: built at the start on the main process, continued from a checkpoint, scored when due."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch.utils.data import Dataset

from byol_pytorch import BYOL
from byol_pytorch.training.callbacks.base import TrainerControl, TrainerState
from byol_pytorch.training.callbacks.probe import OnlineProbing

from .conftest import OneProcessAccelerator, tiny_cnn


class Labelled(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.full((3, 16, 16), index / 8), index % 2


def _trainer(main: bool = True) -> SimpleNamespace:
    torch.manual_seed(0)
    learner = BYOL(tiny_cnn(), 16, hidden_layer="pool", projection_size=8, projection_hidden_size=16)
    accelerator = OneProcessAccelerator()
    accelerator.is_main_process = main
    logged: list[dict] = []
    return SimpleNamespace(learner=learner, accelerator=accelerator, log=logged.append, logged=logged)


def test_the_probe_trains_every_step_and_is_scored_when_due_and_at_the_end() -> None:
    trainer, probing = _trainer(), OnlineProbing(Labelled(), Labelled(), batch_size=4, seed=0)
    assert probing.state_dict() is None  # nothing to keep before training
    probing.on_train_begin(trainer, TrainerState(max_steps=3), TrainerControl())
    for step, due in ((1, False), (2, True), (3, False)):
        probing.on_step_end(trainer, TrainerState(max_steps=3, step=step), TrainerControl(should_evaluate=due))
    assert [r["step"] for r in trainer.logged] == [2, 3] and all(0 <= r["probe_top1"] <= 1 for r in trainer.logged)
    saved = probing.state_dict()
    resumed = OnlineProbing(Labelled(), Labelled(), batch_size=4, seed=0)
    resumed.load_state_dict(saved)  # before the start, as a resume gives it
    resumed.on_train_begin(trainer, TrainerState(max_steps=3), TrainerControl())
    assert all(torch.equal(a, b) for a, b in zip(resumed.probe.classifier.state_dict().values(),
                                                 probing.probe.classifier.state_dict().values()))


def test_other_processes_build_no_probe() -> None:
    trainer, probing = _trainer(main=False), OnlineProbing(Labelled(), Labelled(), batch_size=4, seed=0)
    probing.on_train_begin(trainer, TrainerState(max_steps=3), TrainerControl())
    probing.on_step_end(trainer, TrainerState(max_steps=3, step=3), TrainerControl())
    assert probing.probe is None and trainer.logged == []
