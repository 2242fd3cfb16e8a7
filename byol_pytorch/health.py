"""Health checks of a training run: a finite loss, a finite state to save, a representation that has not collapsed."""

from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .checkpoint import first_non_finite
from .errors import NonFiniteLossError, NonFiniteStateError

if TYPE_CHECKING:
    from accelerate import Accelerator

# Healthy l2-normalised representations have a per-dimension std near 1/sqrt(d).
COLLAPSE_FRACTION = 0.2


def check_loss_finite(finite: torch.Tensor | bool, step: int, steps_since_check: int, output_dir: Path,
                      accelerator: Accelerator) -> None:
    """Raises if the loss of any process was NaN or infinite since the last check (a collective).

    Args:
        finite: this process's flag, accumulated on the device since the last check.
        step: the optimiser step now.
        steps_since_check: batches recorded since the last check.
        output_dir: the run folder, named in the message.
        accelerator: reduces the flag over processes.

    Raises:
        NonFiniteLossError: on every process, before a checkpoint could store weights trained on it.
    """
    flag = accelerator.reduce(torch.as_tensor(finite, device=accelerator.device).float(), "min")
    if flag.item() < 1:
        raise NonFiniteLossError(
            f"the loss became NaN or infinite by step {step} (after step {step - steps_since_check} was finite); "
            f"training stopped and the last good checkpoint in {output_dir} was kept. "
            "Lower the learning rate, set max_grad_norm, or train in mixed_precision='no' "
            "(or 'bf16' rather than 'fp16')"
        )


def check_state_finite(net: nn.Module, learner: nn.Module, optimizer: Any, step: int, output_dir: Path,
                       accelerator: Accelerator) -> None:
    """Raises before saving if a weight, buffer or optimiser state is NaN or infinite (a collective).

    A NaN can sit in a tensor the loss never reads (a running statistic, an
    unused weight); this looks at everything a checkpoint would hold, in one
    pass, and names the first bad tensor under the name a user knows
    (``net.<name>`` for the network's own, else ``learner.`` or ``optimizer.``).

    Raises:
        NonFiniteStateError: on every process; nothing of this step is saved.
    """
    mine = [(f"net.{k}", v) for k, v in net.state_dict().items()]
    seen = {v.data_ptr() for _, v in mine}
    rest = [(f"learner.{k}", v) for k, v in learner.state_dict().items()
            if isinstance(v, torch.Tensor) and v.data_ptr() not in seen]
    names = {p: n for n, p in learner.named_parameters()}
    moments = [(f"optimizer.{names.get(p, '?')}.{key}", value)
               for p, slots in optimizer.state.items() for key, value in slots.items()
               if isinstance(value, torch.Tensor)]
    bad = first_non_finite(itertools.chain(mine, rest, moments))
    flag = torch.tensor(float(bad is not None), device=accelerator.device)
    if accelerator.num_processes > 1:
        flag = accelerator.reduce(flag, "sum")
    if flag.item() > 0:
        name = bad or "a tensor on another process"
        raise NonFiniteStateError(
            f"{name} holds NaN or infinite values at step {step}; nothing of this step was saved and "
            f"the newest checkpoint in {output_dir} is the last good one. Lower the learning rate, "
            "set max_grad_norm or try mixed_precision='no'", name, step)


class CollapseMonitor:
    """Warns once when the representation's spread falls far below that of a healthy one.

    Args:
        representation_dim: D, the width of the representation.
    """

    def __init__(self, representation_dim: int) -> None:
        self.healthy_std = 1 / math.sqrt(representation_dim)
        self.warned = False

    def check(self, step: int, representation_std: float) -> bool:
        """Warns (the first time only) if ``representation_std`` suggests collapse; returns whether it does."""
        collapsed = representation_std < COLLAPSE_FRACTION * self.healthy_std
        if collapsed and not self.warned:
            self.warned = True
            warnings.warn(
                f"representation collapse suspected at step {step}: the std of the l2-normalised "
                f"representations is {representation_std:.2e}, healthy is near {self.healthy_std:.2e} "
                "(1/sqrt(d)); lower the learning rate or check the augmentations", stacklevel=2
            )
        return collapsed
