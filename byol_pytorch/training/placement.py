"""The learner placed for training, and the user's network given back as it was afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn

from ..config import TrainerConfig
from ..distributed import broadcast_state, convert_sync_batchnorm


@contextlib.contextmanager
def placed_for_training(learner: nn.Module, optimizer: torch.optim.Optimizer, accelerator: Accelerator,
                        config: TrainerConfig) -> Iterator[tuple[nn.Module, Any]]:
    """The learner and optimiser as Accelerate prepared them; the network's own state comes back after.

    While training, the network's batch norms may be SyncBatchNorm (several
    GPUs) and its weights channels-last on the training device; afterwards it
    has its own module types, memory format and device again. With several
    processes every one starts from the main process's network, the layers
    outside the learner included (a classifier the traced encoder leaves out
    would otherwise keep each process's own initialisation).

    Yields:
        ``(model, optimizer)``: the learner and optimiser as ``accelerator.prepare`` wrapped them.
    """
    net = learner.net
    net_device = next(net.parameters()).device
    restore_bn = None
    if config.sync_batchnorm and accelerator.num_processes > 1 and accelerator.device.type == "cuda":
        restore_bn = convert_sync_batchnorm(learner)
    if config.channels_last:
        learner.to(memory_format=torch.channels_last)
    try:
        # The loader is not given to Accelerate: TrainingData shards it by process itself.
        model, prepared_optimizer = accelerator.prepare(learner, optimizer)
        if accelerator.num_processes > 1:
            broadcast_state(net, accelerator.device)
        yield model, prepared_optimizer
    finally:
        if restore_bn is not None:
            restore_bn()
        net.to(device=net_device, memory_format=torch.contiguous_format)
