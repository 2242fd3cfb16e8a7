"""Scores of a backbone: kNN and linear-probe accuracy, trained against random initialisation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..evaluate import FrozenEncoder, evaluate_encoder, extract_features, half_split_knn_accuracy
from ..model import Normalize
from .networks import build_model


def _counter(bar: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """Advances a progress bar by each batch's images and passes the batch on."""

    def count(images: torch.Tensor) -> torch.Tensor:
        bar.update(images.shape[0])
        return images

    return count


def _bar(total: int, desc: str, progress: bool) -> tqdm:
    """A progress bar over images that disappears when done."""
    return tqdm(total=total, desc=desc, unit="img", disable=not progress, dynamic_ncols=True, leave=False)


def frozen_backbone(net: nn.Module, hidden_layer: str | int, device: torch.device) -> FrozenEncoder:
    """The hidden layer of ``net`` (moved to ``device``) on images normalised as in training, in eval mode."""
    return FrozenEncoder(net.to(device), hidden_layer, normalize=Normalize())


def features_of(net: nn.Module, hidden_layer: str | int, dataset: Dataset, device: torch.device,
                batch_size: int = 256, desc: str = "features",
                progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden-layer features ``(N, D)`` and labels of a labelled dataset, normalised as in training."""
    encoder = frozen_backbone(net, hidden_layer, device)
    with _bar(len(dataset), desc, progress) as bar:  # type: ignore[arg-type]
        return extract_features(encoder, dataset, batch_size=batch_size, device=device, transform=_counter(bar))


def score_backbones(spec: dict[str, Any], trained: nn.Module, bank: Dataset, query: Dataset, k: int,
                    device: torch.device, progress: bool = True) -> dict[str, dict[str, float]]:
    """kNN top-1 and linear-probe top-1 of the trained network and of its random initialisation."""
    scores: dict[str, dict[str, float]] = {}
    for row, net in (("trained", trained), ("random_init", build_model(spec))):
        encoder = frozen_backbone(net, spec["hidden_layer"], device)
        with _bar(len(bank) + len(query), row.replace("_", " "), progress) as bar:  # type: ignore[arg-type]
            scores[row] = evaluate_encoder(encoder, bank, query, k=k, device=device, transform=_counter(bar))
    return scores


def monitor_baseline(spec: dict[str, Any], dataset: Dataset, k: int, device: torch.device) -> float:
    """The kNN monitor's figure for the random initialisation, by the trainer's protocol.

    The same :func:`~byol_pytorch.evaluate.half_split_knn_accuracy` as
    ``BYOLTrainer.knn_accuracy``: the level the monitor's curve starts from,
    drawn in the report.
    """
    features, labels = features_of(build_model(spec), spec["hidden_layer"], dataset, device, progress=False)
    return half_split_knn_accuracy(features, labels, k=k)


def score_table(scores: dict[str, dict[str, float]]) -> str:
    lines = [f"  {'':<13}{'kNN top-1':>11}{'linear probe':>15}"]
    for row in ("trained", "random_init"):
        lines.append(f"  {row.replace('_', ' '):<13}{scores[row]['knn_top1']:>11.4f}"
                     f"{scores[row]['linear_probe_top1']:>15.4f}")
    return "\n".join(lines)
