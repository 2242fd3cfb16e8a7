"""The kNN monitor: how well the representation separates labelled images, every ``knn_every`` steps."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ...evaluate import FrozenEncoder, extract_features, half_split_knn_accuracy
from .base import TrainerCallback, TrainerControl, TrainerState


def knn_accuracy(learner: nn.Module, dataset: Dataset, device: torch.device, k: int) -> float:
    """kNN top-1 of the learner's online encoder on ``dataset``: half of it the memory bank, half the queries."""
    features, labels = extract_features(FrozenEncoder(learner), dataset, batch_size=256, device=device)
    return half_split_knn_accuracy(features, labels, k=k)


class KnnMonitor(TrainerCallback):
    """Logs ``knn_top1`` on the steps due for evaluation (``knn_every``), on every process.

    Args:
        eval_dataset: labelled images (``(image, label)`` items).
        k: neighbours of the vote.
    """

    def __init__(self, eval_dataset: Dataset, k: int) -> None:
        self.eval_dataset, self.k = eval_dataset, k

    def on_step_end(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if control.should_evaluate:
            accuracy = knn_accuracy(trainer.learner, self.eval_dataset, trainer.accelerator.device, self.k)
            trainer.log({"step": state.step, "knn_top1": accuracy, "time": time.time()})
