"""The online linear probe as a callback: one step of its own per training step, scored with the monitors."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils.data import Dataset

from ...probe import OnlineProbe, count_classes
from .base import TrainerCallback, TrainerControl, TrainerState


class OnlineProbing(TrainerCallback):
    """Trains an :class:`~byol_pytorch.probe.OnlineProbe` beside the run (main process) and logs its score.

    It changes nothing of the BYOL run: the probe reads detached
    representations and draws from its own generator. Its state is kept in
    the run's checkpoints (under ``"probe"``).

    Args:
        probe_dataset: labelled images the probe trains on.
        eval_dataset: labelled images it is scored on (``probe_top1``), on the steps due for
            evaluation and at the end.
        batch_size: images per probe step.
        seed: seeds the probe's batch order.
    """

    checkpoint_key = "probe"

    def __init__(self, probe_dataset: Dataset, eval_dataset: Dataset, batch_size: int, seed: int) -> None:
        self.probe_dataset, self.eval_dataset = probe_dataset, eval_dataset
        self.batch_size, self.seed = batch_size, seed
        self.probe: OnlineProbe | None = None
        self._saved: dict[str, Any] | None = None

    def on_train_begin(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if not trainer.accelerator.is_main_process:
            return
        with torch.random.fork_rng(devices=[]):  # reading the labels draws nothing from the run's RNG
            classes = count_classes(self.probe_dataset)
        self.probe = OnlineProbe(trainer.learner.representation_dim, classes, self.probe_dataset, self.batch_size,
                                 self.seed, device=trainer.accelerator.device)
        if self._saved is not None:
            self.probe.load_state_dict(self._saved)

    def on_step_end(self, trainer: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.probe is None:
            return
        device = trainer.accelerator.device
        loss = self.probe.train_step(trainer.learner, device)
        if control.should_evaluate or state.step == state.max_steps:
            accuracy = self.probe.accuracy(trainer.learner, self.eval_dataset, device)
            trainer.log({"step": state.step, "probe_top1": accuracy, "probe_loss": loss, "time": time.time()})

    def state_dict(self) -> dict[str, Any] | None:
        return self.probe.state_dict() if self.probe is not None else None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._saved = state
        if self.probe is not None:
            self.probe.load_state_dict(state)
