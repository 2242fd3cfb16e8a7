"""KnnMonitor: kNN top-1 on labelled images, logged on the steps due for evaluation only."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch.utils.data import Dataset

from byol_pytorch import BYOL
from byol_pytorch.training.callbacks.base import TrainerControl, TrainerState
from byol_pytorch.training.callbacks.knn import KnnMonitor, knn_accuracy

from .conftest import OneProcessAccelerator, tiny_cnn


class DarkAndBright(Dataset):
    """Class 0 dark, class 1 bright: any encoder with a mean over pixels separates them."""

    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.full((3, 16, 16), 0.1 if index % 2 == 0 else 0.9), index % 2


def test_the_monitor_logs_the_accuracy_when_evaluation_is_due() -> None:
    torch.manual_seed(0)
    learner = BYOL(tiny_cnn(), 16, hidden_layer="pool", projection_size=8, projection_hidden_size=16)
    assert knn_accuracy(learner, DarkAndBright(), torch.device("cpu"), k=3) == 1.0
    logged: list[dict] = []
    trainer = SimpleNamespace(learner=learner, accelerator=OneProcessAccelerator(), log=logged.append)
    monitor = KnnMonitor(DarkAndBright(), k=3)
    monitor.on_step_end(trainer, TrainerState(max_steps=9, step=3), TrainerControl())
    monitor.on_step_end(trainer, TrainerState(max_steps=9, step=4), TrainerControl(should_evaluate=True))
    assert [(r["step"], r["knn_top1"]) for r in logged] == [(4, 1.0)]
