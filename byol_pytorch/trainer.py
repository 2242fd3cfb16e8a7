"""BYOLTrainer: trains a BYOL learner with Hugging Face Accelerate, one CPU to many GPUs."""

from __future__ import annotations

import contextlib
import io
import json
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
from torch.utils.data import DataLoader, Dataset

from .checkpoint import (
    atomic_save,
    checkpoint_name,
    list_checkpoints,
    prune_checkpoints,
    remove_stale_temporaries,
    safe_load,
)
from .config import TrainerConfig
from .data import CroppedViews, ImageFolderDataset, LoaderCrops, collate_images, collate_views
from .data.gpu_decode import EncodedBatch, collate_encoded, decode_views
from .devices import default_num_workers, resolve_mixed_precision
from .distributed import broadcast_bytes, convert_sync_batchnorm, gather_rng_states, restore_rng_state
from .errors import CheckpointError, DiskFullError
from .evaluate import FrozenEncoder, extract_features, half_split_knn_accuracy
from .export import save_network
from .health import check_state_finite
from .model import BYOL
from .optim import build_optimizer, optimizer_class, scaled_learning_rate, warmup_cosine
from .probe import OnlineProbe, count_classes
from .run_log import RunLogger
from .trackers import check_trackers
from .trainer_kwargs import (
    BYOL_CONFIG_FIELDS,
    accelerator_arguments,
    check_optimizer_kwargs,
    check_prebuilt_learner,
    merge_accelerator_kwargs,
    merge_byol_kwargs,
    merge_checkpoint_folder,
    merge_optimizer_kwargs,
    take_byol_options,
)

DEFAULT_LR = {"adam": 3e-4, "adamw": 3e-4, "sgd": 0.05, "lars": 0.2}

__all__ = ["BYOLTrainer"]


class BYOLTrainer:
    """Pretrains ``net`` with BYOL on ``dataset`` using Hugging Face Accelerate.

    The same script runs on one process (``python train.py``) and on many
    (``accelerate launch train.py``). ``batch_size`` is per process.

    Args:
        net: the image network to improve (trained in place), or a
            :class:`BYOL` learner built around it, used as it is (then give no
            BYOL argument here and leave ``image_size`` out or equal to the
            learner's).
        dataset: any dataset of images: items may be tensors, PIL images,
            numpy arrays or ``(image, label)`` pairs (labels ignored). An
            :class:`~byol_pytorch.data.ImageFolderDataset` is read through
            a copy that crops both views in the loader workers from the whole
            photo and sends them as uint8 (``loader_crops``; not with
            ``augment_fn``), the colour part running on the device.
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
        checkpoint_folder: byol-pytorch 0.9's name for ``output_dir`` (default
            ``./checkpoints``); giving both with different folders is an error.
        byol_kwargs: any arguments of :class:`BYOL` (``projection_size``,
            ``augment_fn``, ``sync_batchnorm``, ``mean``, ...). A key that is
            also a trainer keyword may be given in either place; in both, the
            values must agree.
        optimizer_kwargs: passed to the optimiser's constructor (``betas``,
            ``eps``, ``momentum``, ...); ``lr`` is ``learning_rate`` and
            ``weight_decay`` is ``weight_decay``, with the same rule.
        accelerator_kwargs: passed to ``accelerate.Accelerator`` over the
            trainer's defaults (``cpu``, ``project_dir``, ``kwargs_handlers``,
            ...); ``mixed_precision``, ``gradient_accumulation_steps`` and
            ``log_with`` are the trainer's options, with the same rule.
        **options: every field of :class:`TrainerConfig` (learning_rate,
            num_train_steps, batch_size, checkpoint_every, ...), and every
            other argument of :class:`BYOL` (``crop_scale``, ``mean``,
            ``std``, ``spatial_pool``, ``token_pool``, ``trace``, ...), as if
            given in ``byol_kwargs``.

    Attributes:
        learner: the :class:`BYOL` module being trained.
        net: the user's network (the learner's online encoder shares its weights).
        optimizer, scheduler: built with the trainer; checkpointed with the run.
        step: optimiser steps done. ``epoch`` and ``batch_in_epoch`` say where
            in the data the next batch comes from.
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
        merge_checkpoint_folder(options, checkpoint_folder)
        views = {"augment_fn": augment_fn, "augment_fn2": augment_fn2, "normalize": normalize}
        byol_kwargs = take_byol_options(byol_kwargs, options)
        prebuilt = net if isinstance(net, BYOL) else None
        if prebuilt is not None:
            check_prebuilt_learner(prebuilt, image_size, byol_kwargs, views, options)
            byol_extra: dict[str, Any] = {}
        else:
            if image_size is None:
                raise TypeError("BYOLTrainer needs image_size (the side of the views) unless net is a BYOL")
            byol_extra = merge_byol_kwargs(byol_kwargs, options, views, image_size)
        self.optimizer_kwargs = merge_optimizer_kwargs(optimizer_kwargs, options)
        accelerator_overrides = merge_accelerator_kwargs(accelerator_kwargs, options)
        self.config = config = TrainerConfig.from_kwargs(**options)
        check_trackers(config.log_with if accelerator is None else None)
        check_optimizer_kwargs(optimizer_class(optimizer_klass or config.optimizer), self.optimizer_kwargs)
        self.output_dir = Path(config.output_dir)
        if not config.resume and list_checkpoints(self.output_dir):
            raise FileExistsError(
                f"{self.output_dir} already holds checkpoints; pass resume=True to continue that run "
                "or choose another output_dir"
            )
        self.dataset, self.eval_dataset, self.probe_dataset = dataset, eval_dataset, probe_dataset
        self.learner = prebuilt if prebuilt is not None else self._build_learner(net, image_size, views, byol_extra)
        self.net: nn.Module = self.learner.net
        self.accelerator = accelerator or self._build_accelerator(accelerator_overrides)
        self.optimizer_klass = optimizer_klass
        self.optimizer = self._build_optimizer()
        self.scheduler = self._build_scheduler(self.optimizer)
        self.step = self.epoch = self.batch_in_epoch = 0
        self.history: list[dict[str, Any]] = []
        self.data_wait_s = 0.0
        self.probe: OnlineProbe | None = None
        self.prepared_model: nn.Module | None = None
        self.train_dataset = self._training_dataset()

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

    def _training_dataset(self) -> Dataset:
        """The dataset as training reads it: folders crop in the loader (a copy; the user's is left as it is)."""
        dataset = self.dataset
        if (self.config.loader_crops and isinstance(dataset, ImageFolderDataset) and dataset.views is None
                and self.learner.takes_views):
            crops = LoaderCrops(self.learner.crop_spec, seed=self.config.seed, encoded_jpegs=self.config.gpu_decode)
            return dataset.with_views(crops)
        if self.config.gpu_decode:
            warnings.warn("gpu_decode applies to an ImageFolderDataset with loader_crops and the built-in "
                          "augmentation; this run decodes in the loader as usual", stacklevel=3)
        return dataset

    @property
    def _encoded(self) -> bool:
        views = getattr(self.train_dataset, "views", None)
        return views is not None and views.encoded_jpegs

    @property
    def num_workers(self) -> int:
        """The loader's worker processes: ``num_workers``, or :func:`~byol_pytorch.devices.default_num_workers`."""
        if self.config.num_workers is not None:
            return self.config.num_workers
        acc = self.accelerator
        # torchrun and accelerate launch say how many processes share this machine.
        per_machine = int(os.environ.get("LOCAL_WORLD_SIZE", acc.num_processes))
        return default_num_workers(acc.device.type, per_machine)

    def _dataloader(self) -> DataLoader:
        c, processes = self.config, self.accelerator.num_processes
        if len(self.dataset) < c.batch_size * processes:
            raise ValueError(f"the dataset has {len(self.dataset)} images, fewer than one batch "
                             f"({c.batch_size} per process x {processes} processes)")
        views = getattr(self.train_dataset, "views", None)
        workers = self.num_workers
        collate = collate_images if views is None else collate_encoded if views.encoded_jpegs else collate_views
        loader = DataLoader(
            self.train_dataset, batch_size=c.batch_size, shuffle=True, drop_last=True, collate_fn=collate,
            num_workers=workers, pin_memory=self.accelerator.device.type == "cuda",
            persistent_workers=workers > 0, generator=torch.Generator().manual_seed(c.seed),
        )
        batches, in_flight = len(loader) // processes, workers * (loader.prefetch_factor or 0)
        # Measured on an H200: 4 batches of 256 an epoch for 15 workers, and 75 % of the loop waited.
        if batches < in_flight and self.accelerator.is_main_process:
            held = f"{batches} batch{'es' if batches != 1 else ''}"
            warnings.warn(f"an epoch holds {held} per process, fewer than the {in_flight} that {workers} loader "
                          "workers keep in flight; a loader does not read ahead into the next epoch, so each "
                          "epoch starts with the step waiting for data. More images or a smaller batch_size keep "
                          "it fed", stacklevel=5)  # the caller's trainer()
        return loader

    # -- checkpoints ---------------------------------------------------------------

    def _state(self, rng: list[dict[str, Any]]) -> dict[str, Any]:
        state = {
            "format": 2, "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "learner": self.learner.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": rng[0], "rng_per_process": rng,
            "config": {k: v for k, v in self.config.to_dict().items() if isinstance(v, (int, float, str, bool))},
        }
        if self.accelerator.scaler is not None:
            state["scaler"] = self.accelerator.scaler.state_dict()
        if self.probe is not None:
            state["probe"] = self.probe.state_dict()
        return state

    def sync_buffers(self) -> None:
        """Averages batch-norm running statistics over processes (online and target).

        DDP keeps parameters equal, but each process's batch norm tracks the
        statistics of its own shard; averaging them at every checkpoint and at
        the end gives every process, and the saved network, the same state.
        """
        if self.accelerator.num_processes == 1:
            return
        with torch.no_grad():
            for buffer in self.learner.buffers():
                if buffer.is_floating_point():
                    buffer.copy_(self.accelerator.reduce(buffer.clone(), "mean"))

    def save_checkpoint(self) -> Path | None:
        """Writes the full training state, ``net.pt`` and ``net.safetensors`` (main process only); returns the path.

        Every process must call it (it averages batch-norm statistics and
        gathers random states). Before training it saves the initial state.

        Raises:
            NonFiniteStateError: a tensor of the state is not finite; nothing is written.
            DiskFullError: the disk filled up; what was saved before is intact.
        """
        self.sync_buffers()
        check_state_finite(self.net, self.learner, self.optimizer, self.step, self.output_dir, self.accelerator)
        # Every process draws its own augmentations: each one's generators are saved, so that a
        # resumed multi-process run continues exactly as an uninterrupted one.
        rng = gather_rng_states(self.accelerator)
        if not self.accelerator.is_main_process:
            return None
        path = atomic_save(self._state(rng), self.output_dir / checkpoint_name(self.step))
        save_network(self.net.state_dict(), self.output_dir)
        prune_checkpoints(self.output_dir, self.config.keep_checkpoints)
        return path

    def _resume_path(self) -> Path | None:
        resume = self.config.resume
        if not resume:
            return None
        if resume is True or resume == "latest":
            return self._newest_intact(self.output_dir)
        path = Path(resume)
        if path.is_dir():
            if not list_checkpoints(path):
                raise FileNotFoundError(f"no checkpoint-*.pt in {path} to resume from")
            return self._newest_intact(path)
        if not path.is_file():
            raise FileNotFoundError(f"resume checkpoint {path} does not exist")
        return path

    @staticmethod
    def _newest_intact(folder: Path) -> Path | None:
        """The newest checkpoint in ``folder`` that loads; a corrupt newer one is named in a warning."""
        for path in reversed(list_checkpoints(folder)):
            try:
                safe_load(path, map_location="meta")
            except CheckpointError as err:
                warnings.warn(f"skipping {path}: {str(err).split(';')[0]}", stacklevel=3)
                continue
            return path
        return None

    def _shared_resume(self) -> tuple[Path | None, dict[str, Any] | None]:
        """The checkpoint to resume from and its contents, the same on every process.

        The main process alone looks at the run folder and decides; the file's
        bytes are then broadcast, so machines that do not share its filesystem
        resume from the same step with the same state (every process's random
        state included) instead of starting over.

        Raises:
            FileNotFoundError: the checkpoint asked for does not exist (on every process).
            CheckpointError: the checkpoint asked for is corrupt (on every process).
        """
        if not self.config.resume:
            return None, None
        acc = self.accelerator
        decision: dict[str, Any] = {}
        data = None
        if acc.is_main_process:
            try:
                path = self._resume_path()
            except FileNotFoundError as err:
                decision = {"error": "FileNotFoundError", "message": str(err)}
            except CheckpointError as err:
                decision = {"error": "CheckpointError", "message": str(err), "path": str(err.path)}
            else:
                decision = {"path": None if path is None else str(path)}
                if path is not None and acc.num_processes > 1:
                    data = path.read_bytes()
        if acc.num_processes > 1:
            decision = json.loads(broadcast_bytes(acc, json.dumps(decision).encode()))
        if decision.get("error") == "FileNotFoundError":
            raise FileNotFoundError(decision["message"])
        if decision.get("error") == "CheckpointError":
            raise CheckpointError(decision["message"], decision["path"])
        if decision["path"] is None:
            return None, None
        path = Path(decision["path"])
        if acc.num_processes == 1:
            return path, safe_load(path)
        # Every process, the main one included, loads the very bytes that were sent.
        data = broadcast_bytes(acc, data)
        return path, torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)

    def _load(self, state: dict[str, Any]) -> None:
        """Puts the run where ``state`` (a checkpoint's contents) left it; the learner is already on its device."""
        self.learner.load_state_dict(state["learner"])
        self.optimizer.load_state_dict(state["optimizer"])
        if "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        else:  # format 1: the schedule is a function of the step
            self.scheduler.last_epoch = int(state["step"]) - 1
            self.scheduler.step()
        if "scaler" in state and self.accelerator.scaler is not None:
            self.accelerator.scaler.load_state_dict(state["scaler"])
        restore_rng_state(self._own_rng_state(state))
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])

    def _own_rng_state(self, state: dict[str, Any]) -> dict[str, Any]:
        per_process = state.get("rng_per_process")
        processes, index = self.accelerator.num_processes, self.accelerator.process_index
        if per_process is not None and len(per_process) == processes:
            return per_process[index]
        if processes > 1:
            saved = len(per_process) if per_process is not None else 1
            warnings.warn(f"the checkpoint holds random states of {saved} process(es), this run has {processes}; "
                          "every process continues from the first one's, so the augmentations differ from an "
                          "uninterrupted run", stacklevel=3)
        return state["rng"]

    # -- training ------------------------------------------------------------------

    def __call__(self) -> nn.Module:
        """Trains for ``num_train_steps`` optimiser steps and returns the improved network."""
        set_seed(self.config.seed, device_specific=True)
        with self._placed_for_training() as (model, optimizer, loader):
            resume_state = self._resume()
            self.probe = self._build_probe((resume_state or {}).get("probe"))
            logger = RunLogger(self.accelerator, self.config, self.output_dir, self.learner.representation_dim,
                               self.history, start_step=self.step)
            try:
                self._train(model, optimizer, loader, logger)
            except DiskFullError as err:
                intact = list_checkpoints(self.output_dir)
                resume = (f"the last intact checkpoint is {intact[-1]}; free some space and resume from it"
                          if intact else "no checkpoint of this run was written yet")
                raise DiskFullError(f"{err} at step {self.step}; {resume}", err.path) from err
            finally:
                self.data_wait_s = logger.total_wait
                logger.close(self.step)
        self._report_skipped_files()
        self.accelerator.end_training()
        return self.net

    @contextlib.contextmanager
    def _placed_for_training(self) -> Iterator[tuple[nn.Module, Any, Any]]:
        """The learner, optimiser and loader as Accelerate prepared them; the network's own state comes back after.

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
            loader = self._dataloader()
            if acc.is_main_process:
                for stale in remove_stale_temporaries(self.output_dir):
                    acc.print(f"removed {stale}, left by a process killed while saving")
            if self._encoded:  # compressed files stay on the host: the decoder reads them from there
                model, optimizer = acc.prepare(self.learner, self.optimizer)
                loader = acc.prepare_data_loader(loader, device_placement=False)
            else:
                model, optimizer, loader = acc.prepare(self.learner, self.optimizer, loader)
            self.prepared_model = model
            if acc.num_processes > 1:
                self._broadcast_network()
            yield (torch.compile(model) if c.compile else model), optimizer, loader
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
        """Loads the checkpoint that ``resume`` names, if any; returns its contents."""
        acc = self.accelerator
        resume_from, state = self._shared_resume()
        if state is not None:
            self._load(state)
            where = f" (the main process's choice, sent to all {acc.num_processes})" if acc.num_processes > 1 else ""
            acc.print(f"resumed from {resume_from} at step {self.step}{where}")
        return state

    def _train(self, model: nn.Module, optimizer: Any, loader: Any, logger: RunLogger) -> None:
        """Runs optimiser steps until ``num_train_steps``, epoch after epoch, from ``epoch``/``batch_in_epoch``."""
        acc, total = self.accelerator, self.config.num_train_steps
        while self.step < total:
            loader.set_epoch(self.epoch)
            if isinstance(self.train_dataset, ImageFolderDataset):
                self.train_dataset.set_epoch(self.epoch)  # the loader crops of this epoch
            batches = acc.skip_first_batches(loader, self.batch_in_epoch) if self.batch_in_epoch else loader
            for images in _timed(batches, logger):
                out, batch = self._forward_backward(model, optimizer, images)
                self.batch_in_epoch += 1
                logger.record(out, batch)
                if acc.sync_gradients:
                    self._after_optimizer_step(logger)
                if self.step >= total:
                    return
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0

    def _forward_backward(self, model: nn.Module, optimizer: Any, images: Any) -> tuple[Any, int]:
        """One batch: the loss, its gradients, and the optimiser step when the accumulation is complete.

        Returns:
            The learner's :class:`~byol_pytorch.BYOLOutput` and the batch's image count (this process).
        """
        acc = self.accelerator
        if isinstance(images, EncodedBatch):
            images = decode_views(images, self.learner.image_size, acc.device)
        with acc.accumulate(model):
            if isinstance(images, CroppedViews):
                out, batch = model(views=images, return_details=True), images[0].shape[0]
            else:
                out, batch = model(images, return_details=True), images.shape[0]
            acc.backward(out.loss)
            if acc.sync_gradients and self.config.max_grad_norm:
                acc.clip_grad_norm_(model.parameters(), self.config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return out, batch

    def _after_optimizer_step(self, logger: RunLogger) -> None:
        """The target's EMA, the schedules, then logging, monitors and checkpoints of the step just taken."""
        c = self.config
        # The rate and decay this step used, read before either schedule advances.
        lr, tau = self.optimizer.param_groups[0]["lr"], self.learner.current_tau
        self.learner.update_moving_average()
        self.scheduler.step()
        self.step += 1
        last = self.step == c.num_train_steps
        if self.step % c.log_every == 0 or last:
            logger.log(self.step, lr, tau)
        monitor_now = bool(c.knn_every) and self.step % c.knn_every == 0
        if monitor_now and self.eval_dataset is not None:
            logger.log_knn(self.step, self.knn_accuracy())
        if self.probe is not None:
            loss = self.probe.train_step(self.learner, self.accelerator.device)
            if monitor_now or last:
                logger.log_probe(self.step, self.probe.accuracy(self.learner, self.eval_dataset,
                                                                self.accelerator.device), loss)
        if self.step % c.checkpoint_every == 0 or last:
            logger.check_finite(self.step)
            self.save_checkpoint()

    def _report_skipped_files(self) -> None:
        # ImageFolderDataset counts the files its DataLoader workers met too; with
        # several processes this is the main process's share of the data.
        skipped = getattr(self.dataset, "skipped_count", 0)
        if skipped:
            self.accelerator.print(
                f"{skipped} of the {len(self.dataset)} image files could not be read and were skipped (each named "
                f"above when first met); training used the other {len(self.dataset) - skipped}")

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
