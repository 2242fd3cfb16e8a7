"""byol-pytorch: self-supervised pretraining of any image network with BYOL."""

from .config import TrainerConfig
from .data import DigitsDataset, ImageFolderDataset, MockDataset
from .model import BYOL, BYOLAugmentation, BYOLOutput, cosine_tau
from .optim import LARS
from .trainer import BYOLTrainer, NonFiniteLossError

__version__ = "0.1.0"

__all__ = [
    "BYOL",
    "BYOLAugmentation",
    "BYOLOutput",
    "BYOLTrainer",
    "DigitsDataset",
    "ImageFolderDataset",
    "LARS",
    "MockDataset",
    "NonFiniteLossError",
    "TrainerConfig",
    "cosine_tau",
    "__version__",
]
