"""byol-pytorch: self-supervised pretraining of any image network with BYOL."""

from .model import BYOL, BYOLAugmentation, BYOLOutput, cosine_tau

__version__ = "0.1.0"

__all__ = ["BYOL", "BYOLAugmentation", "BYOLOutput", "cosine_tau", "__version__"]
