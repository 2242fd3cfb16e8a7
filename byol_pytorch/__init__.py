"""byol-pytorch: self-supervised pretraining of any image network with BYOL.

The model side (``BYOL`` and its pieces, data, evaluation) is pure PyTorch;
the trainer, which needs Hugging Face Accelerate, is imported on first use.
"""

from typing import Any

from .data import DigitsDataset, ImageFolderDataset, LoaderCrops, MockDataset, PhotoDataset, PhotoTransform, TrainingStream
from .errors import DiskFullError, NonFiniteLossError, NonFiniteStateError
from .model import BYOL, BYOLAugmentation, BYOLOutput, CropSpec, FrozenEncoder, cosine_tau
from .model.legacy import SEM  # byol-pytorch 0.9's top-level name for the simplicial embedding
from .optim import LARS
from .pretrained import load_network

__version__ = "1.0.0"

_TRAINER_NAMES = {"BYOLTrainer": "training", "TrainerCallback": "training", "TrainerConfig": "config"}

__all__ = [
    "BYOL",
    "BYOLAugmentation",
    "BYOLOutput",
    "BYOLTrainer",
    "CropSpec",
    "DigitsDataset",
    "DiskFullError",
    "FrozenEncoder",
    "ImageFolderDataset",
    "LARS",
    "LoaderCrops",
    "MockDataset",
    "NonFiniteLossError",
    "NonFiniteStateError",
    "PhotoDataset",
    "PhotoTransform",
    "SEM",
    "TrainerCallback",
    "TrainerConfig",
    "TrainingStream",
    "cosine_tau",
    "load_network",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Importing the trainer loads accelerate; users of the module alone never pay for it.
    if name in _TRAINER_NAMES:
        import importlib

        return getattr(importlib.import_module(f".{_TRAINER_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'byol_pytorch' has no attribute {name!r}")
