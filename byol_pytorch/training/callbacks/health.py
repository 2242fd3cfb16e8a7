"""The run's health checks as a callback: a finite loss before logging or saving, and a warning on collapse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...health import CollapseMonitor, check_loss_finite
from .base import TrainerCallback, TrainerControl, TrainerState


class HealthChecks(TrainerCallback):
    """Stops a run whose loss went NaN or infinite before it logs or saves, and warns once on collapse.

    The losses' finiteness is gathered on the device batch by batch and read
    (over all processes) only when a step is logged or saved.

    Args:
        representation_dim: D, the width of the representation (a healthy spread is near 1/sqrt(D)).
        output_dir: the run folder, named in the error.
    """

    def __init__(self, representation_dim: int, output_dir: Path) -> None:
        self.collapse = CollapseMonitor(representation_dim)
        self.output_dir = Path(output_dir)
        self._finite: torch.Tensor | bool = True
        self._batches = 0

    def on_batch_end(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self._finite = torch.isfinite(kwargs["output"].loss.detach()) & self._finite
        self._batches += 1

    def on_step_end(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if (control.should_log or control.should_save) and self._batches:
            check_loss_finite(self._finite, state.step, self._batches, self.output_dir, trainer.accelerator)
            self._finite, self._batches = True, 0

    def on_log(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        logs = kwargs["logs"]
        if "representation_std" in logs and trainer.accelerator.is_main_process:
            self.collapse.check(logs["step"], logs["representation_std"])
