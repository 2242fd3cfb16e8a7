"""The online linear probe: a classifier trained on detached representations while BYOL trains.

Its accuracy on held-out labelled images is the signal to watch during
pretraining (solo-learn and stable-pretraining users watch the same). It never
touches the backbone: its features come from a frozen, eval-mode, no-grad pass
of the online encoder (so no gradient flows back and no batch-norm statistic
moves), its own optimiser holds only its own weights, and every random draw it
makes (its batch order, data-loader seeds) happens inside a forked RNG state,
so the augmentations of the BYOL run are exactly those of a run without it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from .evaluate import FrozenEncoder, extract_features

DEFAULT_PROBE_LR = 1e-3


def count_classes(dataset: Dataset) -> int:
    """Number of classes of a labelled dataset: ``len(dataset.classes)`` when it has them, else max label + 1.

    Raises:
        ValueError: an item is not an ``(image, label)`` pair.
    """
    classes = getattr(dataset, "classes", None)
    if classes is not None:
        return len(classes)
    labels = []
    for index in range(len(dataset)):
        item = dataset[index]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(f"probe_dataset item {index} is a {type(item).__name__}; expected an (image, label) pair")
        labels.append(int(item[1]))
    return max(labels) + 1


class OnlineProbe:
    """A linear classifier on the online encoder's representation, with its own Adam and batch order.

    Args:
        representation_dim: width D of the representation.
        num_classes: classes of ``dataset``.
        dataset: labelled training images for the probe (``(image, label)`` items).
        batch_size: images per probe step.
        seed: seeds the probe's own batch order.
        lr: Adam's learning rate for the probe.
        device: where the classifier lives (the trainer's device).
    """

    def __init__(self, representation_dim: int, num_classes: int, dataset: Dataset, batch_size: int, seed: int,
                 lr: float = DEFAULT_PROBE_LR, device: torch.device | str = "cpu") -> None:
        if num_classes < 2:
            raise ValueError(f"the probe needs at least 2 classes, probe_dataset has {num_classes}")
        self.dataset, self.batch_size = dataset, min(batch_size, len(dataset))
        # Built on the meta device and zeroed: nn.Linear's own initialisation would draw from the
        # run's RNG and shift its augmentations (logistic regression is convex, any start works).
        self.classifier = nn.Linear(representation_dim, num_classes, device="meta").to_empty(device=device)
        nn.init.zeros_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)
        self.optimizer = torch.optim.Adam(self.classifier.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.long)
        self.position = 0
        self.last_loss = float("nan")

    def _next_indices(self) -> list[int]:
        if self.position + self.batch_size > len(self.order):
            self.order = torch.randperm(len(self.dataset), generator=self.generator)
            self.position = 0
        indices = self.order[self.position:self.position + self.batch_size].tolist()
        self.position += self.batch_size
        return indices

    def _features(self, learner: nn.Module, dataset: Dataset, device: torch.device) -> tuple[torch.Tensor,
                                                                                             torch.Tensor]:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            features, labels = extract_features(FrozenEncoder(learner), dataset, batch_size=256, device=device)
        return features.to(device), labels.to(device)

    def train_step(self, learner: nn.Module, device: torch.device) -> float:
        """One optimiser step of the classifier on a batch of ``dataset``; returns its loss."""
        features, labels = self._features(learner, Subset(self.dataset, self._next_indices()), device)
        loss = nn.functional.cross_entropy(self.classifier(features), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.last_loss = float(loss.detach())
        return self.last_loss

    @torch.no_grad()
    def accuracy(self, learner: nn.Module, dataset: Dataset, device: torch.device) -> float:
        """Top-1 of the classifier on the current representation of a labelled ``dataset``."""
        features, labels = self._features(learner, dataset, device)
        return float((self.classifier(features).argmax(dim=1) == labels).float().mean())

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue the probe exactly (tensors and plain values)."""
        return {"classifier": self.classifier.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "order": self.order, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.classifier.load_state_dict(state["classifier"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.order, self.position = state["order"], int(state["position"])
