"""The model side of BYOL: pure PyTorch (and kornia), no training loop, no accelerate."""

from .augment import BYOLAugmentation, CropSpec, Normalize, default_augmentations, digit_augmentations
from .byol import BYOL, BYOLOutput, representation_std
from .ema import DEFAULT_TAU, copy_weights_, cosine_tau, ema_update_
from .encoder import HiddenLayerEncoder, resolve_hidden_layer
from .frozen import FrozenEncoder
from .heads import MLPHead, SimSiamProjector, simsiam_predictor
from .loss import byol_loss, normalized_mse

__all__ = [
    "BYOL",
    "DEFAULT_TAU",
    "BYOLAugmentation",
    "BYOLOutput",
    "CropSpec",
    "FrozenEncoder",
    "HiddenLayerEncoder",
    "MLPHead",
    "Normalize",
    "SimSiamProjector",
    "byol_loss",
    "copy_weights_",
    "cosine_tau",
    "default_augmentations",
    "digit_augmentations",
    "ema_update_",
    "normalized_mse",
    "representation_std",
    "resolve_hidden_layer",
    "simsiam_predictor",
]
