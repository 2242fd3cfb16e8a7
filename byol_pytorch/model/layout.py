"""The learner's ``state_dict`` layout, and the translation of earlier layouts on load.

The parts byol-pytorch 0.9 has are saved under its names (``net.*``,
``online_encoder.net.*``, ``online_encoder.projector.*``, ``online_predictor.*``,
``target_encoder.net.*``, ``target_encoder.projector.*``); the library's own
extra state under its own (``ema_steps``). ``net.*`` and ``online_encoder.net.*``
are the same tensors, saved twice as 0.9 did (``torch.save`` stores them once).

Accepted on load, besides that layout:
- a state dict written by byol-pytorch 0.9 (no ``ema_steps``: the count is kept);
- a state dict written by byol-pytorch 1.0.0 before this layout
  (``online_encoder.traced.*``, ``online_projector.*``, ``target_projector.*``, no
  classifier: the layers after the hidden one keep their current weights).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# byol-pytorch 1.0.0's first names -> the names of this layout.
_RENAMED_1_0 = (
    ("online_encoder.traced.", "online_encoder.net."),
    ("online_projector.", "online_encoder.projector."),
    ("target_encoder.traced.", "target_encoder.net."),
    ("target_projector.", "target_encoder.projector."),
)
_SEM_KEY = "online_encoder.projector.0.0.weight"  # the simplicial embedding's linear layer
# The same, for names as named_buffers() gives them (the network's tensors under their first name, net.*).
_TENSOR_NAMES_1_0 = (("online_encoder.traced.", "net."), ("online_encoder.net.", "net."),
                     *_RENAMED_1_0[1:])


def tensor_name(name: str) -> str:
    """A tensor's name from ``named_buffers()`` of 1.0.0's first layout, as the learner names it now."""
    for old, new in _TENSOR_NAMES_1_0:
        if name.startswith(old):
            return new + name[len(old):]
    return name


def _rename_1_0(state: dict[str, Any], prefix: str) -> bool:
    """Renames 1.0.0's first keys in place; whether there were any."""
    renamed = False
    for key in [k for k in state if k.startswith(prefix)]:
        local = key[len(prefix):]
        for old, new in _RENAMED_1_0:
            if local.startswith(old):
                value = state.pop(key)
                renamed = True
                # A traced graph's constants (snapshots the tracer took of a tensor) are rebuilt, not loaded.
                if not local.rsplit(".", 1)[-1].startswith("_tensor_constant"):
                    state[prefix + new + local[len(old):]] = value
                break
    return renamed


def _fill_network_copies(module: nn.Module, state: dict[str, Any], prefix: str) -> None:
    """1.0.0's first layout saved the network once and without the layers after the hidden one.

    ``net.*`` and ``online_encoder.net.*`` name one tensor: the copy found fills
    the other; the network's tensors found in neither keep their values. (Not
    done for other layouts: ``safetensors.torch.load_model`` counts the names it
    dropped as missing, and would take filled ones for unexpected.)
    """
    own = module.state_dict()
    for name in module.net.state_dict():
        pair = (prefix + "net." + name, prefix + "online_encoder.net." + name)
        present = [key for key in pair if key in state]
        for key in pair:
            if key in state:
                continue
            state[key] = state[present[0]] if present else own[key[len(prefix):]]
        target_key = "target_encoder.net." + name
        if prefix + target_key not in state and target_key in own:
            state[prefix + target_key] = own[target_key]


def _check_simplicial(module: nn.Module, state: dict[str, Any], prefix: str) -> None:
    saved_with = prefix + _SEM_KEY in state
    saved_without = prefix + "online_encoder.projector.0.weight" in state
    built_with = module.online_encoder.use_simplicial_embeddings
    if (saved_with and not built_with) or (saved_without and built_with):
        raise ValueError(
            f"the state dict was saved {'with' if saved_with else 'without'} simplicial embeddings and this "
            f"learner was built {'with' if built_with else 'without'} them; build the learner with "
            f"use_simplicial_embeddings={saved_with} (and the same sem_num_simplices and sem_simplex_dim) to load it"
        )


def upgrade_state_dict(module: nn.Module, state: dict[str, Any], prefix: str, *_: Any) -> None:
    """Load-time pre-hook of :class:`~byol_pytorch.BYOL`: earlier layouts become this one, in place.

    Raises:
        ValueError: the state dict and the learner disagree on simplicial embeddings.
    """
    extra = state.pop(prefix + "_extra_state", None)  # the first 1.0.0 format kept the EMA step there
    if isinstance(extra, dict) and "ema_step" in extra and prefix + "ema_steps" not in state:
        state[prefix + "ema_steps"] = torch.tensor(int(extra["ema_step"]), dtype=torch.long)
    if _rename_1_0(state, prefix):
        _fill_network_copies(module, state, prefix)
    if prefix + "ema_steps" not in state and prefix + "online_predictor.0.weight" in state:
        state[prefix + "ema_steps"] = module.ema_steps.detach().clone()  # byol-pytorch 0.9 counted no steps
    _check_simplicial(module, state, prefix)


def after_load(module: nn.Module, _incompatible_keys: Any) -> None:
    """Load-time post-hook: the Python EMA step follows the buffer; the encoders hold the loaded tensors."""
    module._ema_step = int(module.ema_steps.item())
    for encoder in (module.online_encoder, module.target_encoder):
        if encoder is not None:
            encoder.relink()
