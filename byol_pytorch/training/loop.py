"""BYOLTrainer: the training loop on Hugging Face Accelerate; the callbacks do the rest."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import Dataset

from ..checkpoint import CheckpointSchedule
from ..compat import TrainerAliases
from ..config import TrainerConfig
from ..distributed import main_process_verdict
from ..errors import DiskFullError
from ..model import BYOL
from ..preemption import TrainingStopped
from ..trackers import check_trackers
from .build import build_accelerator, build_data, build_learner, build_optimizer, build_scheduler
from .callbacks import CallbackList, TrainerCallback, TrainerControl, TrainerState, default_callbacks
from .callbacks.checkpoints import disk_full, refuse_existing_run, save_checkpoint
from .callbacks.knn import knn_accuracy
from .options import resolve_options
from .placement import placed_for_training


class BYOLTrainer(TrainerAliases):
    """Pretrains ``net`` with BYOL on ``dataset``, on one process or many (``accelerate launch``).

    Args:
        net: the network to improve (trained in place), or a :class:`BYOL` learner to train as it is.
        dataset: the training images (see docs/data.md); ``batch_size`` images per process and step.
        image_size: side of the views, or ``(height, width)``; not needed when ``net`` is a :class:`BYOL`.
        config: the run's options; keywords in ``**options`` are set on top of it.
        callbacks: :class:`~byol_pytorch.training.callbacks.TrainerCallback` instances called after the trainer's own.
        eval_dataset: labelled images for the kNN monitor (``knn_every``) and the probe's score.
        probe_dataset: labelled images for an online linear probe.
        optimizer_klass: a ``torch.optim.Optimizer`` class instead of ``optimizer``.
        augment_fn, augment_fn2, normalize: your own views, as :class:`BYOL` takes them.
        accelerator: an ``Accelerator`` to use instead of building one.
        checkpoint_folder, byol_kwargs, optimizer_kwargs, accelerator_kwargs: byol-pytorch 0.9's keywords.
        **options: fields of :class:`TrainerConfig`, and other arguments of :class:`BYOL`.

    Raises:
        OptionError: an option is out of range. ValueError: two ways of giving an option disagree.
        TypeError: an unknown option. FileExistsError: ``output_dir`` holds checkpoints and ``resume`` is off.
    """

    def __init__(self, net: nn.Module, dataset: Dataset, image_size: int | tuple[int, int] | None = None, *,
                 config: TrainerConfig | None = None, callbacks: Sequence[TrainerCallback] = (),
                 eval_dataset: Dataset | None = None, probe_dataset: Dataset | None = None,
                 optimizer_klass: type[torch.optim.Optimizer] | None = None,
                 augment_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 augment_fn2: Callable[[torch.Tensor], torch.Tensor] | None = None, normalize: bool | None = None,
                 accelerator: Accelerator | None = None, checkpoint_folder: str | os.PathLike[str] | None = None,
                 byol_kwargs: dict[str, Any] | None = None, optimizer_kwargs: dict[str, Any] | None = None,
                 accelerator_kwargs: dict[str, Any] | None = None, **options: Any) -> None:
        prebuilt = net if isinstance(net, BYOL) else None
        given = resolve_options(config, options, image_size=image_size, prebuilt=prebuilt,
                                views={"augment_fn": augment_fn, "augment_fn2": augment_fn2, "normalize": normalize},
                                checkpoint_folder=checkpoint_folder, byol_kwargs=byol_kwargs,
                                optimizer_kwargs=optimizer_kwargs, accelerator_kwargs=accelerator_kwargs,
                                accelerator_given=accelerator is not None)
        self.config = c = given.config
        check_trackers(c.log_with if accelerator is None else None)
        self.output_dir = Path(c.output_dir)
        refuse_existing_run(self.output_dir, c.resume)
        self.dataset, self.eval_dataset, self.probe_dataset = dataset, eval_dataset, probe_dataset
        self.learner = prebuilt if prebuilt is not None else build_learner(
            net, image_size, c, given.views, given.byol_extra)  # type: ignore[arg-type]
        self.net: nn.Module = self.learner.net
        self.callbacks = CallbackList([*default_callbacks(c, self.learner.representation_dim, eval_dataset,
                                                          probe_dataset), *callbacks])
        self.accelerator = accelerator or build_accelerator(c, self.learner, given.accelerator_overrides)
        self.optimizer_klass = optimizer_klass
        self.optimizer = build_optimizer(self.learner, c, self.global_batch_size, optimizer_klass,
                                         device=self.accelerator.device, **given.optimizer_kwargs)
        self.scheduler = build_scheduler(self.optimizer, c)
        self.data = build_data(dataset, self.learner, c, self.accelerator)
        self.state, self.control = TrainerState(max_steps=c.num_train_steps), TrainerControl()
        self.checkpoint_schedule = CheckpointSchedule(c.checkpoint_every, check_every=c.log_every)
        self.prepared_model: nn.Module | None = None  # the learner as accelerator.prepare wrapped it

    step = property(lambda self: self.state.step, doc="Optimiser steps done.")
    start_step = property(lambda self: self.state.start_step, doc="The step this call started (or resumed) from.")
    images_seen = property(lambda self: self.state.images_seen, doc="Images all processes took from the data.")
    epoch = property(lambda self: self.data.epoch_of(self.state.images_seen), doc="The next batch's epoch.")
    history = property(lambda self: self.state.log_history, doc="Every record logged, on every process.")
    data_wait_s = property(lambda self: self.state.data_wait_s, doc="Seconds this process waited for batches.")

    @property
    def global_batch_size(self) -> int:
        """Images per optimiser step over all processes and accumulated batches."""
        return self.config.batch_size * self.accelerator.num_processes * self.config.gradient_accumulation_steps

    def save_checkpoint(self) -> Path | None:
        """Saves the run's state now; every process must call it (see :func:`.checkpoints.save_checkpoint`)."""
        return save_checkpoint(self)

    def knn_accuracy(self) -> float:
        """kNN top-1 of the current online encoder on ``eval_dataset`` (half bank, half queries)."""
        return knn_accuracy(self.learner, self.eval_dataset, self.accelerator.device, self.config.knn_k)

    def log(self, logs: dict[str, Any]) -> None:
        """Adds a record (with its ``step``) to the history and hands it to every callback's ``on_log``."""
        self.state.log_history.append(logs)
        self.callbacks.call("on_log", self, self.state, self.control, logs=logs)

    def __call__(self) -> nn.Module:
        """Trains for ``num_train_steps`` optimiser steps and returns the improved network.

        Raises:
            TrainingStopped: a stop signal arrived (``handle_signals``): the step in progress finished and a
                checkpoint of it was saved. A ``SystemExit`` with status 128 + the signal's number.
        """
        set_seed(self.config.seed, device_specific=True)
        state, control, acc = self.state, self.control, self.accelerator
        try:
            with placed_for_training(self.learner, self.optimizer, acc, self.config) as (model, optimizer):
                self.prepared_model = model
                try:
                    self.callbacks.call("on_train_begin", self, state, control)
                    state.start_step = state.step
                    self._train(torch.compile(model) if self.config.compile else model, optimizer)
                except DiskFullError as err:
                    raise disk_full(err, state.step, self.output_dir) from err
                finally:
                    self.callbacks.call("on_train_end", self, state, control)
        except TrainingStopped as stopped:
            acc.print(f"{stopped}; resume=True (the same output_dir) continues the run")
            acc.end_training()
            raise
        acc.end_training()
        return self.net

    def _train(self, model: nn.Module, optimizer: Any) -> None:
        """Runs optimiser steps until ``num_train_steps``, from ``images_seen`` on."""
        acc, state, data, c = self.accelerator, self.state, self.data, self.config
        if state.step >= state.max_steps:
            return
        for batch in _timed(data.loader(state.images_seen), state):
            inputs = data.learner_input(batch)
            with acc.accumulate(model):
                out = model(**inputs.arguments, return_details=True)
                acc.backward(out.loss)
                if acc.sync_gradients and c.max_grad_norm:
                    acc.clip_grad_norm_(model.parameters(), c.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            state.images_seen += data.images_per_batch
            state.batch_images = inputs.count
            self.callbacks.call("on_batch_end", self, state, self.control, output=out)
            if acc.sync_gradients:
                self._step_end()
                if state.step >= state.max_steps:
                    return

    def _step_end(self) -> None:
        """The target's EMA and the schedules after an optimiser step, then the callbacks; stops if asked to."""
        c, state, control = self.config, self.state, self.control
        # The rate and decay this step used, read before either schedule advances.
        state.lr, state.tau = self.optimizer.param_groups[0]["lr"], self.learner.current_tau
        self.learner.update_moving_average()
        self.scheduler.step()
        state.step += 1
        state.epoch = self.data.epoch_of(state.images_seen)
        last = state.step == state.max_steps
        control.should_log = state.step % c.log_every == 0 or last
        control.should_evaluate = bool(c.knn_every) and state.step % c.knn_every == 0
        control.should_save = self.checkpoint_schedule.due(
            state.step, lambda verdict: main_process_verdict(self.accelerator, verdict)) or last
        control.stop_signal = 0
        self.callbacks.call("on_step_end", self, state, control)
        if control.stop_signal:
            # No process leaves before the main one has written the checkpoint: a launcher ends the others
            # as soon as one exits.
            self.accelerator.wait_for_everyone()
            raise TrainingStopped(control.stop_signal, state.step, state.checkpoint)


def _timed(batches: Iterable[Any], state: TrainerState) -> Iterator[Any]:
    """Yields the batches, noting in ``state`` how long each one was waited for."""
    iterator = iter(batches)
    while True:
        start = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            return
        state.batch_wait_s = time.perf_counter() - start
        state.data_wait_s += state.batch_wait_s
        yield batch
