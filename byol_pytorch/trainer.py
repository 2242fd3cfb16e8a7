"""``byol_pytorch.trainer``: where byol-pytorch 0.9's scripts import the trainer from (it lives in ``training/``)."""

from .compat import DEFAULT_DDP_KWARGS, cycle, exists  # noqa: F401 - 0.9's other names here (docs/migrating.md)
from .compat import trainer_module_getattr as __getattr__  # noqa: F401
from .data import MockDataset
from .training import BYOLTrainer

__all__ = ["BYOLTrainer", "MockDataset"]
