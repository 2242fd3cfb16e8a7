"""Representations through a library's own feature API: timm's pre-logits, a Hugging Face output field.

Cutting a network at a module (``HiddenLayerEncoder``'s tracing or hook) works
for any network, but two families say themselves where their representation
is, and that is what their users expect:

- timm models: ``forward_features`` then ``forward_head(..., pre_logits=True)``,
  the pooled features just before the classifier, chosen with
  ``hidden_layer="pre_logits"``;
- Hugging Face ``transformers`` models (``ViTModel``, ``Dinov2Model``,
  ``ConvNextModel``, ...), which return a ``ModelOutput``, not a tensor: the
  field is named by ``hidden_layer``, ``"pooler_output"`` or
  ``"last_hidden_state"`` (then pooled like any token sequence or feature map).

Nothing here imports timm or transformers: the networks are recognised by
what they offer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

PRE_LOGITS = "pre_logits"

FeatureMode = Literal["pre_logits", "field"]


def has_timm_features(net: nn.Module) -> bool:
    """Whether ``net`` offers timm's ``forward_features`` and ``forward_head``."""
    return callable(getattr(net, "forward_features", None)) and callable(getattr(net, "forward_head", None))


def is_transformers_model(net: nn.Module) -> bool:
    """Whether ``net`` is a Hugging Face ``transformers`` model (a ``PreTrainedModel``)."""
    return any(cls.__name__ == "PreTrainedModel" for cls in type(net).__mro__)


def feature_mode(net: nn.Module, hidden_layer: object) -> FeatureMode | None:
    """How ``hidden_layer`` is read through the network's own API, or ``None`` to cut at a module.

    ``"pre_logits"`` on a network with timm's feature API means that API;
    on a transformers model, a string that names no module names a field of
    its output.
    """
    if not isinstance(hidden_layer, str):
        return None
    if hidden_layer == PRE_LOGITS and has_timm_features(net):
        return "pre_logits"
    if is_transformers_model(net) and hidden_layer not in dict(net.named_modules()):
        return "field"
    return None


def timm_pre_logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """timm's pooled pre-logits features: ``forward_head(forward_features(x), pre_logits=True)``."""
    return net.forward_head(net.forward_features(x), pre_logits=True)


def output_fields(out: object) -> list[str]:
    """The names of the non-empty fields of a ``ModelOutput`` (or any mapping)."""
    return [key for key, value in out.items() if value is not None] if isinstance(out, Mapping) else []


def output_field(net: nn.Module, x: torch.Tensor, field: str) -> object:
    """Field ``field`` of the ``ModelOutput`` that ``net(x)`` returns.

    Raises:
        ValueError: the output has no such field (or it is ``None``); the message lists those it has.
    """
    out = net(x)
    value = out.get(field) if isinstance(out, Mapping) else getattr(out, field, None)
    if value is None:
        fields = output_fields(out)
        raise ValueError(
            f"hidden_layer {field!r} is neither a module of {type(net).__name__} nor a field of its output "
            f"{type(out).__name__}; fields: {', '.join(fields) or 'none'} "
            "(for example hidden_layer='pooler_output', or 'last_hidden_state' pooled by token_pool)"
        )
    return value
