"""``byol_pytorch.trainer``: where byol-pytorch 0.9's scripts import the trainer from (it lives in ``training/``)."""

from .data import MockDataset
from .training import BYOLTrainer

__all__ = ["BYOLTrainer", "MockDataset"]
