"""byol-pytorch 0.9's module path: ``from byol_pytorch.byol_pytorch import BYOL, RandomApply, ...``.

A thin re-export, no second implementation: every public name of 0.9's
``byol_pytorch/byol_pytorch.py`` is the library's own piece with 0.9's meaning
(docs/migrating.md lists each). New code imports from ``byol_pytorch``.
"""

# 0.9's module imported these for itself; scripts that reached them through it still find them.
import copy  # noqa: F401
import random  # noqa: F401
from functools import wraps  # noqa: F401

import torch  # noqa: F401
import torch.distributed as dist  # noqa: F401
import torch.nn.functional as F  # noqa: F401
from torch import nn  # noqa: F401
from torch.nn import Module  # noqa: F401
from torchvision import transforms as T  # noqa: F401

from .model.byol import BYOL
from .model.ema import EMA
from .model.legacy import (
    MLP,
    SEM,
    MaybeSyncBatchnorm,
    RandomApply,
    SimSiamMLP,
    cosine_loss_fn,
    default,
    divisible_by,
    exists,
    flatten,
    get_module_device,
    kl_loss_fn,
    l2norm,
    set_requires_grad,
    singleton,
    update_moving_average,
)
from .model.wrapper import NetWrapper

__all__ = [
    "BYOL", "EMA", "MLP", "SEM", "MaybeSyncBatchnorm", "NetWrapper", "RandomApply", "SimSiamMLP", "cosine_loss_fn",
    "default", "divisible_by", "exists", "flatten", "get_module_device", "kl_loss_fn", "l2norm",
    "set_requires_grad", "singleton", "update_moving_average",
]


def __getattr__(name: str) -> object:
    if name == "rearrange":
        # An ImportError, not an AttributeError: `from ... import rearrange` then shows this message.
        raise ImportError("byol_pytorch.byol_pytorch.rearrange was 0.9's import of einops.rearrange, which this "
                          "library does not depend on: `pip install einops` and `from einops import rearrange`")
    raise AttributeError(f"module 'byol_pytorch.byol_pytorch' has no attribute {name!r}")
