"""Scores of a backbone: kNN and linear-probe accuracy, trained against random initialisation."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..evaluate import extract_features, knn_accuracy, linear_probe
from ..model import HiddenLayerEncoder, Normalize
from .networks import build_model


class _Counting(nn.Module):
    """Normalises each batch like the training views and advances a progress bar."""

    def __init__(self, bar: Any) -> None:
        super().__init__()
        self.normalize = Normalize()
        self.bar = bar

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.bar.update(images.shape[0])
        return self.normalize(images)


def features_of(net: nn.Module, hidden_layer: str | int, dataset: Dataset, device: torch.device,
                batch_size: int = 256, desc: str = "features",
                progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden-layer features ``(N, D)`` and labels of a labelled dataset, normalised as in training."""
    encoder = HiddenLayerEncoder(net.to(device), hidden_layer)
    with tqdm(total=len(dataset), desc=desc, unit="img", disable=not progress, dynamic_ncols=True,  # type: ignore[arg-type]
              leave=False) as bar:
        return extract_features(encoder, dataset, batch_size=batch_size, device=device, transform=_Counting(bar))


def score_backbones(spec: dict[str, Any], trained: nn.Module, bank: Dataset, query: Dataset, k: int,
                    device: torch.device, progress: bool = True) -> dict[str, dict[str, float]]:
    """kNN top-1 and linear-probe top-1 of the trained network and of its random initialisation."""
    scores: dict[str, dict[str, float]] = {}
    for row, net in (("trained", trained), ("random_init", build_model(spec))):
        label = row.replace("_", " ")
        bank_x, bank_y = features_of(net, spec["hidden_layer"], bank, device, desc=f"{label}: bank", progress=progress)
        query_x, query_y = features_of(net, spec["hidden_layer"], query, device, desc=f"{label}: queries",
                                       progress=progress)
        classes = int(torch.maximum(bank_y.max(), query_y.max())) + 1
        scores[row] = {
            "knn_top1": knn_accuracy(bank_x, bank_y, query_x, query_y, k=k, num_classes=classes),
            "linear_probe_top1": linear_probe(bank_x, bank_y, query_x, query_y, num_classes=classes),
        }
    return scores


def monitor_baseline(spec: dict[str, Any], dataset: Dataset, k: int, device: torch.device) -> float:
    """The kNN monitor's figure for the random initialisation, by the trainer's protocol.

    ``BYOLTrainer.knn_accuracy`` splits its evaluation set in two halves with
    a permutation seeded 0 (bank, queries); the same split here gives the level
    the monitor's curve starts from, drawn in the report.
    """
    features, labels = features_of(build_model(spec), spec["hidden_layer"], dataset, device, progress=False)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    bank, query = order[: len(order) // 2], order[len(order) // 2:]
    return knn_accuracy(features[bank], labels[bank], features[query], labels[query], k=k)


def score_table(scores: dict[str, dict[str, float]]) -> str:
    lines = [f"  {'':<13}{'kNN top-1':>11}{'linear probe':>15}"]
    for row in ("trained", "random_init"):
        lines.append(f"  {row.replace('_', ' '):<13}{scores[row]['knn_top1']:>11.4f}"
                     f"{scores[row]['linear_probe_top1']:>15.4f}")
    return "\n".join(lines)
