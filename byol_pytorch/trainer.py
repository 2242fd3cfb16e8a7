"""BYOLTrainer: trains a BYOL learner with Hugging Face Accelerate, one CPU to many GPUs."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import Dataset

from .checkpoint import list_checkpoints, remove_stale_temporaries
from .compat import BYOL_CONFIG_FIELDS, TrainerAliases, accelerator_arguments, check_optimizer_kwargs, trainer_arguments
from .data import ImageFolderDataset, LoaderCrops
from .data.pipeline import LearnerInput, TrainingData
from .devices import default_num_workers, resolve_mixed_precision
from .distributed import average_buffers, convert_sync_batchnorm, gather_objects
from .errors import DiskFullError
from .evaluate import FrozenEncoder, extract_features, half_split_knn_accuracy
from .metrics import set_aside_records_after
from .model import BYOL
from .optim import build_optimizer, optimizer_class, scaled_learning_rate, warmup_cosine
from .preemption import StopAgreement, StopSignals, TrainingStopped
from .probe import OnlineProbe, count_classes
from .run_log import RunLogger
from .run_state import (
    RunLayout,
    checkpoint_contents,
    find_resume_point,
    load_contents,
    restore_process_state,
    resume_changes,
    start_position,
    write_checkpoint,
)
from .trackers import check_trackers

DEFAULT_LR = {"adam": 3e-4, "adamw": 3e-4, "sgd": 0.05, "lars": 0.2}

__all__ = ["BYOLTrainer"]


class BYOLTrainer(TrainerAliases):
    """Pretrains ``net`` with BYOL on ``dataset`` using Hugging Face Accelerate.

    The same script runs on one process (``python train.py``) and on many
    (``accelerate launch train.py``). ``batch_size`` is per process.

    Args:
        net: the image network to improve (trained in place), or a
            :class:`BYOL` learner built around it, used as it is (then give no
            BYOL argument here and leave ``image_size`` out or equal to the
            learner's).
        dataset: any dataset of images: items may be tensors, PIL images,
            numpy arrays, ``(image, label)`` pairs (labels ignored) or dicts
            holding the image under ``image_key`` (a ``datasets.Dataset``);
            or a stream without a length (a ``torch.utils.data.IterableDataset``,
            a ``datasets.IterableDataset``, a :class:`~byol_pytorch.data.TrainingStream`
            of tar shards), split across processes and workers. Its first item
            is checked here. Photos (an
            :class:`~byol_pytorch.data.ImageFolderDataset`, PIL images, encoded
            bytes) are read through a copy that crops both views in the loader
            workers from the whole photo and sends them as uint8
            (``loader_crops``; not with ``augment_fn``), the colour part
            running on the device.
        image_size: side of the augmented views, int or ``(height, width)``;
            required unless ``net`` is a :class:`BYOL`.
        eval_dataset: a labelled dataset for the periodic kNN monitor
            (``knn_every``); half of it is the memory bank, half the queries.
        probe_dataset: labelled images for an online linear probe: a linear
            classifier on the detached representation, one step of its own
            Adam per training step (main process), scored on ``eval_dataset``
            every ``knn_every`` steps and at the end (``probe_top1``). It
            changes nothing of the BYOL run (see :mod:`byol_pytorch.probe`).
        optimizer_klass: any ``torch.optim.Optimizer`` class, used instead of
            ``optimizer``.
        augment_fn: replaces view 1's augmentation (see :class:`BYOL`).
        augment_fn2: replaces view 2's augmentation.
        normalize: normalise the views (and the kNN monitor's images) after
            augmentation; ``None`` (default) normalises with the built-in
            views and not with ``augment_fn`` (see :class:`BYOL`).
        accelerator: an ``Accelerator`` to use instead of building one.
        checkpoint_folder, byol_kwargs, optimizer_kwargs, accelerator_kwargs:
            byol-pytorch 0.9's ways of passing options (``output_dir``, and
            arguments of ``BYOL``, the optimiser and ``Accelerator``), merged
            into the config once by :func:`byol_pytorch.compat.trainer_arguments`;
            an option given twice must agree.
        **options: every field of :class:`TrainerConfig` (each also a flag of
            ``byol-pytorch train``), and any other argument of :class:`BYOL`
            (``crop_scale``, ``mean``, ``std``, ...).

    Attributes:
        learner: the :class:`BYOL` module being trained.
        net: the user's network (the learner's online encoder shares its weights).
        optimizer, scheduler: built with the trainer; checkpointed with the run.
        step: optimiser steps done; ``start_step``: the step this call of the
            trainer started (or resumed) from.
        images_seen: images all processes have taken from the data so far (the
            place in the data a checkpoint records); ``epoch`` and
            ``batch_in_epoch`` follow from it.
        data: the :class:`~byol_pytorch.data.pipeline.TrainingData` that feeds the learner.
        history: every record written to ``metrics.jsonl``, also on processes
            that write no file.
        prepared_model: the learner as ``accelerator.prepare`` wrapped it
            (``DistributedDataParallel`` on several processes) while and after
            training; ``None`` before.

    Raises:
        OptionError: an option is out of range (it names the option).
        ValueError: two ways of giving one option disagree (the message names both).
        TypeError: an unknown option, or a dict key its target does not take.
        FileExistsError: ``output_dir`` holds checkpoints and ``resume`` is off.
    """

    def __init__(
        self,
        net: nn.Module,
        dataset: Dataset,
        image_size: int | tuple[int, int] | None = None,
        *,
        eval_dataset: Dataset | None = None,
        probe_dataset: Dataset | None = None,
        optimizer_klass: type[torch.optim.Optimizer] | None = None,
        augment_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        augment_fn2: Callable[[torch.Tensor], torch.Tensor] | None = None,
        normalize: bool | None = None,
        accelerator: Accelerator | None = None,
        checkpoint_folder: str | os.PathLike[str] | None = None,
        byol_kwargs: dict[str, Any] | None = None,
        optimizer_kwargs: dict[str, Any] | None = None,
        accelerator_kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        if accelerator is not None and accelerator_kwargs:
            raise ValueError("accelerator and accelerator_kwargs were both given; pass arguments for a new "
                             "Accelerator or an Accelerator, not both")
        if probe_dataset is not None and eval_dataset is None:
            raise ValueError("probe_dataset was given without eval_dataset; the probe is scored on eval_dataset")
        prebuilt = net if isinstance(net, BYOL) else None
        given = trainer_arguments(options, image_size=image_size, prebuilt=prebuilt,
                                  views={"augment_fn": augment_fn, "augment_fn2": augment_fn2, "normalize": normalize},
                                  checkpoint_folder=checkpoint_folder, byol_kwargs=byol_kwargs,
                                  optimizer_kwargs=optimizer_kwargs, accelerator_kwargs=accelerator_kwargs)
        self.config = config = given.config
        self.optimizer_kwargs = given.optimizer_kwargs
        check_trackers(config.log_with if accelerator is None else None)
        check_optimizer_kwargs(optimizer_class(optimizer_klass or config.optimizer), self.optimizer_kwargs)
        self.output_dir = Path(config.output_dir)
        if not config.resume and list_checkpoints(self.output_dir):
            raise FileExistsError(
                f"{self.output_dir} already holds checkpoints; pass resume=True to continue that run "
                "or choose another output_dir"
            )
        self.dataset, self.eval_dataset, self.probe_dataset = dataset, eval_dataset, probe_dataset
        self.learner = prebuilt if prebuilt is not None else self._build_learner(net, image_size, given.views,
                                                                                 given.byol_extra)
        self.net: nn.Module = self.learner.net
        self.accelerator = accelerator or self._build_accelerator(given.accelerator_overrides)
        self.optimizer_klass = optimizer_klass
        self.optimizer = self._build_optimizer()
        self.scheduler = self._build_scheduler(self.optimizer)
        self.step = self.start_step = self.images_seen = 0
        self.history: list[dict[str, Any]] = []
        self.data_wait_s = 0.0
        self.probe: OnlineProbe | None = None
        self.prepared_model: nn.Module | None = None
        self.data = self._training_data()

    # -- set-up ------------------------------------------------------------------

    def _build_learner(self, net: nn.Module, image_size: int | tuple[int, int], views: dict[str, Any],
                       byol_extra: dict[str, Any]) -> BYOL:
        """The BYOL learner of the config's model options, ``views`` and the other BYOL arguments given."""
        c = self.config
        return BYOL(net, image_size, **{
            **{name: getattr(c, name) for name in BYOL_CONFIG_FIELDS}, **views,
            # The trainer swaps in SyncBatchNorm itself on multi-GPU runs; the heads follow the same rule.
            "sync_batchnorm": None if c.sync_batchnorm else False,
            "ema_total_steps": c.num_train_steps if c.ema_schedule else None,
            **byol_extra,
        })

    def _build_accelerator(self, overrides: dict[str, Any]) -> Accelerator:
        """The run's Accelerator: the config's precision, accumulation and trackers, ``overrides`` on top."""
        c = self.config
        multi = accelerator_is_distributed()
        # Only a traced graph drops the layers after the hidden one; otherwise (a hook, timm's
        # pre-logits, one field of a transformers output) the classifier's parameters get no gradient.
        unused = multi and self.learner.online_encoder.mode not in ("traced", "output")
        if unused:
            warnings.warn("the network is not cut at the hidden layer, so layers after it keep "
                          "parameters without gradients; DDP will search for unused parameters (slower)")
        on_cpu = overrides.get("cpu") or not torch.cuda.is_available()
        return Accelerator(**accelerator_arguments({
            "mixed_precision": resolve_mixed_precision(c.mixed_precision, "cpu" if on_cpu else "cuda"),
            "gradient_accumulation_steps": c.gradient_accumulation_steps,
            "log_with": c.log_with, "project_dir": str(self.output_dir),
            # non_blocking: pinned batches are copied to the GPU while it computes.
            "dataloader_config": DataLoaderConfiguration(use_seedable_sampler=True, data_seed=c.seed,
                                                         non_blocking=True),
            "kwargs_handlers": [DistributedDataParallelKwargs(find_unused_parameters=unused)],
        }, overrides))

    @property
    def global_batch_size(self) -> int:
        """Images per optimiser step over all processes and accumulated batches."""
        c = self.config
        return c.batch_size * self.accelerator.num_processes * c.gradient_accumulation_steps

    def _build_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        name = c.optimizer
        lr = c.learning_rate if c.learning_rate is not None else DEFAULT_LR[name]
        # The class actually built: optimizer_klass, when given, replaces the name.
        cls = optimizer_class(self.optimizer_klass or name)
        if name == "lars" and self.optimizer_klass is None:
            lr = scaled_learning_rate(lr, self.global_batch_size)
        elif issubclass(cls, (torch.optim.Adam, torch.optim.AdamW)) and lr > 1e-2:
            warnings.warn(f"learning_rate {lr} is very high for {cls.__name__} (BYOL's 0.2 is a LARS rate); "
                          "Adam usually collapses above ~1e-3: try 3e-4")
        return build_optimizer(self.learner, self.optimizer_klass or name, lr, c.weight_decay,
                               device=self.accelerator.device, **self.optimizer_kwargs)

    def _build_scheduler(self, optimizer: torch.optim.Optimizer) -> LambdaLR:
        """The learning-rate schedule; step ``k`` (from 0) runs at ``base_lr * factor(k)``.

        ``LambdaLR`` applies ``factor(0)`` when it is built, so the first
        optimiser step is already a warm-up step; the trainer advances it after
        each optimiser step.
        """
        c = self.config
        warmup = c.warmup_steps if c.warmup_steps is not None else c.num_train_steps // 20

        def factor(step: int) -> float:
            if c.lr_schedule == "constant":
                return 1.0
            return warmup_cosine(step, c.num_train_steps, warmup)

        return LambdaLR(optimizer, factor)

    def _loader_crops(self) -> LoaderCrops | None:
        """The crops the loader workers draw with the built-in views (see ``loader_crops``).

        The data pipeline applies them to sources of photos (folders, Hugging Face rows, shards) and sends
        tensors whole; with ``gpu_decode`` their JPEGs travel undecoded.
        """
        dataset, c = self.dataset, self.config
        if c.loader_crops and getattr(dataset, "views", None) is None and self.learner.takes_views:
            return LoaderCrops(self.learner.crop_spec, seed=c.seed, encoded_jpegs=c.gpu_decode)
        if c.gpu_decode:
            warnings.warn("gpu_decode applies to photos (a folder, Hugging Face rows, shards) with loader_crops and "
                          "the built-in augmentation; this run decodes in the loader as usual", stacklevel=4)
        return None

    @property
    def num_workers(self) -> int:
        """The loader's worker processes: ``num_workers``, or :func:`~byol_pytorch.devices.default_num_workers`."""
        if self.config.num_workers is not None:
            return self.config.num_workers
        acc = self.accelerator
        # torchrun and accelerate launch say how many processes share this machine.
        per_machine = int(os.environ.get("LOCAL_WORLD_SIZE", acc.num_processes))
        return default_num_workers(acc.device.type, per_machine)

    def _training_data(self) -> TrainingData:
        acc = self.accelerator
        return TrainingData(self.dataset, batch_size=self.config.batch_size, num_processes=acc.num_processes,
                            process_index=acc.process_index, seed=self.config.seed, num_workers=self.num_workers,
                            device=acc.device, crops=self._loader_crops(), image_size=self.learner.image_size,
                            image_key=self.config.image_key, shuffle_buffer=self.config.shuffle_buffer)

    @property
    def epoch(self) -> int:
        """The epoch the next batch comes from (a stream: the earliest pass its consumed batches came from)."""
        return self.data.epoch_of(self.images_seen)

    @property
    def batch_in_epoch(self) -> int:
        """Batches of all processes together taken from the current epoch (a stream, which has no length: all)."""
        length = self.data.length or self.images_seen + 1
        return self.images_seen % length // (self.config.batch_size * self.accelerator.num_processes)

    @property
    def layout(self) -> RunLayout:
        """Processes, batch and schedule of this run, as its checkpoints record them."""
        c = self.config
        return RunLayout(self.accelerator.num_processes, c.batch_size, c.gradient_accumulation_steps,
                         float(self.scheduler.base_lrs[0]), c.num_train_steps)

    # -- checkpoints ---------------------------------------------------------------

    def _contents(self, rng: list[dict[str, Any]], buffers: list[dict[str, Any]] | None,
                  streams: list[dict[str, Any]] | None) -> dict[str, Any]:
        return checkpoint_contents(
            step=self.step, images_seen=self.images_seen, learner=self.learner, optimizer=self.optimizer,
            scheduler=self.scheduler, scaler=self.accelerator.scaler,
            probe=self.probe.state_dict() if self.probe is not None else None, config=self.config.to_dict(),
            rng=rng, buffers=buffers, layout=self.layout, streams=streams)

    def sync_buffers(self) -> None:
        """Averages batch-norm running statistics over processes (online and target).

        DDP keeps parameters equal, but each process's batch norm tracks the
        statistics of its own shard; averaging them at every checkpoint and at
        the end gives every process, and the saved network, the same state.
        """
        average_buffers(self.accelerator, self.learner)

    def save_checkpoint(self) -> Path | None:
        """Writes the full training state, ``net.pt`` and ``net.safetensors`` (main process only); returns the path.

        Every process must call it (it averages batch-norm statistics and
        gathers random states). Before training it saves the initial state.

        Raises:
            NonFiniteStateError: a tensor of the state is not finite; nothing is written.
            DiskFullError: the disk filled up; what was saved before is intact.
        """
        return self._save(stopping=False)

    def _save(self, stopping: bool) -> Path | None:
        # A stream's place is each process's loader positions, not images_seen; gathered by all, as the rest.
        stream = self.data.state_dict()
        streams = gather_objects(self.accelerator, stream) if stream is not None else None
        return write_checkpoint(self.accelerator, net=self.net, learner=self.learner, optimizer=self.optimizer,
                                step=self.step, output_dir=self.output_dir, keep=self.config.keep_checkpoints,
                                contents=lambda rng, buffers: self._contents(rng, buffers, streams),
                                stopping=stopping)

    # -- training ------------------------------------------------------------------

    def __call__(self) -> nn.Module:
        """Trains for ``num_train_steps`` optimiser steps and returns the improved network.

        Raises:
            TrainingStopped: SIGTERM, SIGINT or SIGUSR1 arrived (with ``handle_signals``, the default): the
                step in progress finished and a checkpoint of it was saved. It is a ``SystemExit``: uncaught,
                the script ends quietly with status 128 + the signal's number (143, 130, 138).
        """
        set_seed(self.config.seed, device_specific=True)
        signals = StopSignals(self.config.handle_signals)
        with signals.installed(), self._placed_for_training() as (model, optimizer):
            resume_state = self._resume()
            self.start_step = self.step
            self.probe = self._build_probe((resume_state or {}).get("probe"))
            agreement = StopAgreement(signals, self.accelerator.num_processes)
            agreement.start()
            logger = RunLogger(self.accelerator, self.config, self.output_dir, self.learner.representation_dim,
                               self.history, start_step=self.step)
            try:
                self._train(model, optimizer, logger, agreement)
                agreement.close()
            except DiskFullError as err:
                intact = list_checkpoints(self.output_dir)
                resume = (f"the last intact checkpoint is {intact[-1]}; free some space and resume from it"
                          if intact else "no checkpoint of this run was written yet")
                raise DiskFullError(f"{err} at step {self.step}; {resume}", err.path) from err
            except TrainingStopped as stopped:
                agreement.close()
                logger.close(self.step)  # the line below goes under the progress bar, not into it
                self.accelerator.print(f"{stopped}; resume=True (the same output_dir) continues the run")
                self.accelerator.end_training()
                raise
            finally:
                self.data_wait_s = logger.total_wait
                logger.close(self.step)
        self._report_skipped_files()
        self.accelerator.end_training()
        return self.net

    @contextlib.contextmanager
    def _placed_for_training(self) -> Iterator[tuple[nn.Module, Any]]:
        """The learner and optimiser as Accelerate prepared them; the network's own state comes back after.

        While training, the network's batch norms may be SyncBatchNorm (several
        GPUs) and its weights channels-last on the training device; afterwards
        it has its own module types, memory format and device again.
        """
        c, acc = self.config, self.accelerator
        net_device = next(self.net.parameters()).device
        restore_bn = None
        if c.sync_batchnorm and acc.num_processes > 1 and acc.device.type == "cuda":
            restore_bn = convert_sync_batchnorm(self.learner)
        if c.channels_last:
            self.learner.to(memory_format=torch.channels_last)
        try:
            if acc.is_main_process:
                for stale in remove_stale_temporaries(self.output_dir):
                    acc.print(f"removed {stale}, left by a process killed while saving")
            # The loader is not given to Accelerate: TrainingData shards it by process itself.
            model, optimizer = acc.prepare(self.learner, self.optimizer)
            self.prepared_model = model
            if acc.num_processes > 1:
                self._broadcast_network()
            yield (torch.compile(model) if c.compile else model), optimizer
        finally:
            if restore_bn is not None:
                restore_bn()
            self.net.to(device=net_device, memory_format=torch.contiguous_format)

    def _broadcast_network(self) -> None:
        """Gives every process the main process's network, the layers outside the learner included.

        DDP makes the learner's parameters equal; layers after the hidden one
        (a classifier the traced encoder leaves out) would otherwise keep each
        process's own initialisation, and each process would return another net.
        """
        import torch.distributed as dist

        device = self.accelerator.device
        with torch.no_grad():
            for tensor in self.net.state_dict().values():
                shared = tensor.to(device)  # NCCL sends device tensors; a layer outside the learner stays put
                dist.broadcast(shared, src=0)
                tensor.copy_(shared)

    def _resume(self) -> dict[str, Any] | None:
        """Loads the checkpoint that ``resume`` names, if any; returns its contents.

        Says in one line (main process) what it resumed, or that there was nothing
        to resume; records of ``metrics.jsonl`` past the resumed step, written by
        the run that stopped, are set aside so that each step appears once.
        """
        acc, c = self.accelerator, self.config
        resume_from, state, notes = find_resume_point(acc, c.resume, self.output_dir)
        if acc.is_main_process:
            for note in notes:
                warnings.warn(note, stacklevel=4)
        if state is not None:
            saved_step = int(state["step"])
            changes = resume_changes(state, self.layout, c.optimizer if self.optimizer_klass is None else "")
            load_contents(state, learner=self.learner, optimizer=self.optimizer, scheduler=self.scheduler,
                          scaler=acc.scaler)
            restore_process_state(state, self.learner, acc.process_index, acc.num_processes, c.seed)
            self.step, self.images_seen = saved_step, start_position(state, self.data.length)
            self.data.load_state_dict(state.get("streams"))
            if changes and acc.is_main_process:
                warnings.warn(changes, stacklevel=4)
            where = f" (the main process's choice, sent to all {acc.num_processes})" if acc.num_processes > 1 else ""
            acc.print(f"resumed from {resume_from} at step {self.step}{where}")
        elif c.resume:
            acc.print(f"nothing to resume in {self.output_dir}: no checkpoint yet; starting a new run")
        if c.resume and acc.is_main_process:
            moved = set_aside_records_after(self.output_dir, self.step)
            if moved:
                acc.print(f"set aside {moved} record(s) of metrics.jsonl past step {self.step}, written by the "
                          "run that stopped, in metrics.superseded.jsonl")
        return state

    def _train(self, model: nn.Module, optimizer: Any, logger: RunLogger, agreement: StopAgreement) -> None:
        """Runs optimiser steps until ``num_train_steps``, from ``images_seen`` on."""
        acc, total = self.accelerator, self.config.num_train_steps
        if self.step >= total:
            return
        for batch in _timed(self.data.loader(self.images_seen), logger):
            inputs = self.data.learner_input(batch)
            out = self._forward_backward(model, optimizer, inputs)
            self.images_seen += self.data.images_per_batch
            logger.record(out, inputs.count)
            if acc.sync_gradients:
                self._after_optimizer_step(logger, agreement.poll())
                if self.step >= total:
                    return

    def _forward_backward(self, model: nn.Module, optimizer: Any, inputs: LearnerInput) -> Any:
        """One batch: the loss, its gradients, and the optimiser step when the accumulation is complete.

        Returns:
            The learner's :class:`~byol_pytorch.BYOLOutput`.
        """
        acc = self.accelerator
        with acc.accumulate(model):
            out = model(**inputs.arguments, return_details=True)
            acc.backward(out.loss)
            if acc.sync_gradients and self.config.max_grad_norm:
                acc.clip_grad_norm_(model.parameters(), self.config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return out

    def _after_optimizer_step(self, logger: RunLogger, stop_signal: int) -> None:
        """The target's EMA, the schedules, then logging, monitors and checkpoints of the step just taken.

        Args:
            stop_signal: a signal some process received (0: none); the step is
                logged and checkpointed, then :class:`TrainingStopped` is raised.
        """
        c = self.config
        # The rate and decay this step used, read before either schedule advances.
        lr, tau = self.optimizer.param_groups[0]["lr"], self.learner.current_tau
        self.learner.update_moving_average()
        self.scheduler.step()
        self.step += 1
        last = self.step == c.num_train_steps
        stopping = bool(stop_signal) and not last
        if self.step % c.log_every == 0 or last or stopping:
            logger.log(self.step, lr, tau)
        monitor_now = bool(c.knn_every) and self.step % c.knn_every == 0
        if monitor_now and self.eval_dataset is not None:
            logger.log_knn(self.step, self.knn_accuracy())
        if self.probe is not None:
            loss = self.probe.train_step(self.learner, self.accelerator.device)
            if monitor_now or last:
                logger.log_probe(self.step, self.probe.accuracy(self.learner, self.eval_dataset,
                                                                self.accelerator.device), loss)
        path = None
        if self.step % c.checkpoint_every == 0 or last or stopping:
            logger.check_finite(self.step)
            path = self._save(stopping=True) if stopping else self.save_checkpoint()
        if stopping:
            # No process leaves before the main one has written the checkpoint: a launcher ends
            # the others as soon as one exits.
            self.accelerator.wait_for_everyone()
            raise TrainingStopped(stop_signal, self.step, path)

    def _report_skipped_files(self) -> None:
        # ImageFolderDataset counts the files its DataLoader workers met too; with
        # several processes this is the main process's share of the data.
        # A stream names each unreadable sample as it meets it, and has no total to compare with.
        skipped, length = getattr(self.data.dataset, "skipped_count", 0), self.data.length
        if skipped and length is not None:
            noun = "image files" if isinstance(self.dataset, ImageFolderDataset) else "images"
            self.accelerator.print(
                f"{skipped} of the {length} {noun} could not be read and were skipped (each named "
                f"above when first met); training used the other {length - skipped}")

    def _build_probe(self, state: dict[str, Any] | None) -> OnlineProbe | None:
        """The online linear probe (main process only), continued from ``state`` when resuming."""
        if self.probe_dataset is None or not self.accelerator.is_main_process:
            return None
        with torch.random.fork_rng(devices=[]):  # reading the labels draws nothing from the run's RNG
            classes = count_classes(self.probe_dataset)
        probe = OnlineProbe(self.learner.representation_dim, classes, self.probe_dataset, self.config.batch_size,
                            self.config.seed, device=self.accelerator.device)
        if state is not None:
            probe.load_state_dict(state)
        return probe

    def knn_accuracy(self) -> float:
        """kNN top-1 of the current online encoder on ``eval_dataset`` (half bank, half queries)."""
        features, labels = extract_features(FrozenEncoder(self.learner), self.eval_dataset, batch_size=256,
                                            device=self.accelerator.device)
        return half_split_knn_accuracy(features, labels, k=self.config.knn_k)


def _timed(batches: Iterable[Any], logger: Any) -> Iterator[Any]:
    """Yields the batches, telling ``logger`` how long each one was waited for."""
    iterator = iter(batches)
    while True:
        start = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            return
        logger.record_wait(time.perf_counter() - start)
        yield batch


def accelerator_is_distributed() -> bool:
    """Whether this process was started as one of several (before an Accelerator exists)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


# byol-pytorch 0.9's other names in this module (docs/migrating.md lists them).
from .compat import DEFAULT_DDP_KWARGS, cycle, exists  # noqa: F401
from .compat import trainer_module_getattr as __getattr__  # noqa: F401
from .data import MockDataset  # noqa: F401
