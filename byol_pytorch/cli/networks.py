"""Networks by name: torchvision (or timm) models built without downloaded weights."""

from __future__ import annotations

import difflib
from typing import Any

import torch
from torch import nn

from ..model.backbones import PRE_LOGITS, has_timm_features
from .common import CLIError, first_line

# Below this side a ResNet's 7x7 stride-2 stem and max-pool leave too little
# of the image for the later stages (a 32-px image is 1x1 at layer4).
SMALL_IMAGE_SIDE = 64

DEFAULT_MODEL = "resnet18"
# The built-in digits are 8x8 scans: 16 px loses nothing and costs a quarter of 32 px.
DEFAULT_IMAGE_SIZE = 16
# A folder of the user's images gets the paper's resolution.
DEFAULT_FOLDER_IMAGE_SIZE = 224

# How the representation is found when --hidden-layer is not given (first match wins).
HIDDEN_LAYER_TABLE = (
    ("pre_logits", "timm models: their own forward_features + forward_head(pre_logits=True)"),
    ("avgpool", "a child named 'avgpool' (ResNet, RegNet, EfficientNet, ConvNeXt, MobileNetV3, Swin, VGG)"),
    ("encoder", "torchvision vision transformers (vit_*)"),
    (-2, "anything else: the child before the last, average-pooled if it is a feature map "
         "(DenseNet, MobileNetV2, MaxViT, SqueezeNet, ...)"),
)


def _timm() -> Any | None:
    try:
        import timm
    except ImportError:
        return None
    return timm


def torchvision_model_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def known_model_names() -> list[str]:
    """torchvision's classification models, and timm's when timm is installed."""
    names = torchvision_model_names()
    timm = _timm()
    if timm is not None:
        names += [n for n in timm.list_models() if n not in set(names)]
    return names


def _unknown_model(name: str) -> CLIError:
    close = difflib.get_close_matches(name, known_model_names(), n=5, cutoff=0.5)
    hint = f"; close names: {', '.join(close)}" if close else "; e.g. resnet18, resnet50, efficientnet_b0, vit_b_16"
    source = "torchvision" + (" or timm" if _timm() is not None else "")
    return CLIError(f"unknown model {name!r}: not a {source} classification model{hint}")


TIMM_PREFIX = "timm:"


def model_source(name: str) -> str:
    """``"torchvision"`` or ``"timm"``; raises CLIError for an unknown name.

    A name both libraries know (``resnet18``) is torchvision's unless written
    ``timm:resnet18``.
    """
    timm = _timm()
    if name.startswith(TIMM_PREFIX):
        if timm is None:
            raise CLIError(f"model {name!r} is a timm model; pip install timm")
        if not timm.is_model(name[len(TIMM_PREFIX):]):
            raise _unknown_model(name[len(TIMM_PREFIX):])
        return "timm"
    if name in torchvision_model_names():
        return "torchvision"
    if timm is not None and timm.is_model(name):
        return "timm"
    raise _unknown_model(name)


def is_resnet_like(net: nn.Module) -> bool:
    """A network with a stride-2 ``conv1`` stem followed by a ``maxpool`` (torchvision ResNets and kin)."""
    conv1 = getattr(net, "conv1", None)
    return isinstance(conv1, nn.Conv2d) and tuple(conv1.stride) == (2, 2) and hasattr(net, "maxpool")


def apply_small_image_stem(net: nn.Module) -> nn.Module:
    """Gives a ResNet the CIFAR stem: a 3x3 stride-1 ``conv1`` and no max-pool.

    The ImageNet stem divides the side by 4 before the first block, so at 32 px
    the last stage sees a single pixel. The CIFAR variant (He et al. 2016,
    section 4.2) keeps the full resolution into ``layer1``; it costs about 16x
    the compute of the stock stem at the same image size.
    """
    if not is_resnet_like(net):
        raise CLIError("--small-image-stem needs a ResNet-like model with conv1 and maxpool")
    old = net.conv1
    net.conv1 = nn.Conv2d(old.in_channels, old.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


def default_hidden_layer(name: str, net: nn.Module) -> str | int:
    """The representation layer for a model, by the table ``HIDDEN_LAYER_TABLE``."""
    children = dict(net.named_children())
    if has_timm_features(net):
        return PRE_LOGITS
    if "avgpool" in children:
        return "avgpool"
    if name.startswith("vit_") and "encoder" in children:
        return "encoder"
    return -2


def build_model(spec: dict[str, Any]) -> nn.Module:
    """The randomly initialised network described by a run spec (``run.json``).

    The global RNG is seeded with ``spec["seed"]`` first, so the same spec
    always gives the same initial weights: the random-init baseline of a run
    is exactly the network its training started from.
    """
    name, size = spec["model"], int(spec["image_size"])
    source = spec.get("source") or model_source(name)
    torch.manual_seed(int(spec.get("seed", 0)))
    kwargs: dict[str, Any] = {"num_classes": int(spec.get("num_classes", 1000))}
    try:
        if source == "timm":
            timm = _timm()
            if timm is None:
                raise CLIError(f"model {name!r} is a timm model; pip install timm")
            name = name.removeprefix(TIMM_PREFIX)
            net = timm.create_model(name, pretrained=False, **kwargs, **timm_size_arguments(name, size))
        else:
            import torchvision

            # Position embeddings (ViT) and attention grids (MaxViT) are built for one input size.
            if name.startswith("vit_"):
                kwargs["image_size"] = size
            elif name.startswith("maxvit"):
                kwargs["input_size"] = (size, size)
            net = torchvision.models.get_model(name, weights=None, **kwargs)
    except CLIError:
        raise
    except (ValueError, TypeError, AssertionError, RuntimeError) as err:
        raise CLIError(f"cannot build {name!r} for {size}-px images ({first_line(err)}); "
                       f"try another --image-size (224 always works for torchvision models)") from err
    if spec.get("small_image_stem"):
        apply_small_image_stem(net)
    return net


def timm_size_arguments(name: str, size: int) -> dict[str, Any]:
    """``{"img_size": size}`` for timm models built for one input size (ViTs), else nothing.

    Pass the same to ``timm.create_model(name, checkpoint_path=...)`` when
    loading such a run's ``net.safetensors``.
    """
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    return {"img_size": size} if cfg is not None and cfg.fixed_input_size else {}


def resolve_small_stem(choice: bool | None, net: nn.Module, image_size: int, device_type: str) -> bool:
    """``--small-image-stem`` auto: on for ResNet-like networks below ``SMALL_IMAGE_SIDE`` px on a GPU.

    Not on a CPU: there the CIFAR stem's ~16x compute turns the minutes of the
    built-in demo into an hour, and within the demo's budget it did not help
    (measured: benchmarks/README.md, "The demo's defaults").
    """
    if choice is not None:
        return choice
    return device_type == "cuda" and image_size < SMALL_IMAGE_SIDE and is_resnet_like(net)
