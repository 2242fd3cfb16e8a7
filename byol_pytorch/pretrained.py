"""The network a run trained, back in your own code: built as ``run.json`` describes it, weights from ``net.pt``.

A run folder written by ``byol-pytorch train`` holds the network's
``state_dict`` (``net.pt`` and ``net.safetensors``) and ``run.json``, which
says how to build the network it fits: the model's name and library
(torchvision or timm), its classifier's classes (10 for the digits demo, 1,000
for a folder run), the image size (timm ViTs are built for one) and whether a
ResNet got the small-image stem. :func:`load_network` reads both.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .export import load_network_state, run_files

__all__ = ["load_network", "read_run_description"]


def read_run_description(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``run.json`` of a run folder (or of the folder of its ``net.pt``): model, image size, hidden layer, ...

    Raises:
        FileNotFoundError: no such folder, or no ``run.json`` in it.
        ValueError: ``run.json`` is not a run description.
    """
    run_dir, _ = run_files(Path(path))
    spec_path = run_dir / "run.json"
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        spec["model"], spec["image_size"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{spec_path} is not a valid run description ({err!r})") from err
    return spec


def load_network(path: str | os.PathLike[str]) -> nn.Module:
    """The network a ``byol-pytorch train`` run trained, with its weights, classifier head included.

    Built as the run's ``run.json`` says (torchvision or timm model, number
    of classes, small-image stem, ViT image size), then loaded from ``net.pt``
    (or ``net.safetensors``) with ``weights_only``. It is returned on the CPU
    in training mode, as a freshly built model is; call ``.eval()`` to use it.
    The global random state is left as it was. The representation BYOL
    trained is the output of ``run.json``'s ``hidden_layer``; the classifier
    head was never trained (BYOL uses no labels): replace it to fine-tune.

    Args:
        path: the run folder, or its ``net.pt`` or ``net.safetensors``.

    Returns:
        The network, e.g. a ``torchvision.models.ResNet``.

    Raises:
        FileNotFoundError: no such folder, or ``run.json`` or the weights missing.
        ValueError: a full training checkpoint instead of the network, weights
            that do not fit the described model, or an unknown model name.
        CheckpointError: the weights file is corrupt or holds pickled objects.
    """
    from .cli.common import CLIError
    from .cli.networks import build_model
    from .cli.runs import state_dict_mismatch

    spec = read_run_description(path)
    _, weights = run_files(Path(path))
    state = load_network_state(weights)
    if "learner" in state and "optimizer" in state:
        raise ValueError(f"{weights} is a full training checkpoint; pass its run folder, whose net.pt holds the "
                         "network alone")
    try:
        with torch.random.fork_rng(devices=[]):  # build_model seeds the RNG for its initial weights
            net = build_model(spec)
    except CLIError as err:
        raise ValueError(f"{weights.parent / 'run.json'}: {err}") from err
    mismatch = state_dict_mismatch(net.state_dict(), state)
    if mismatch:
        raise ValueError(f"{weights} does not fit the {spec['model']} of run.json: {mismatch}")
    net.load_state_dict(state)
    return net

