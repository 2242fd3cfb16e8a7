"""BYOLTrainer: trains a BYOL learner with Hugging Face Accelerate, one CPU to many GPUs."""

from __future__ import annotations

import io
import itertools
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
    first_non_finite,
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
from .errors import DiskFullError, NonFiniteLossError, NonFiniteStateError
from .evaluate import FrozenEncoder, extract_features, half_split_knn_accuracy
from .export import save_network
from .model import BYOL
from .optim import build_optimizer, optimizer_class, scaled_learning_rate, warmup_cosine
from .probe import OnlineProbe, count_classes
from .trackers import check_trackers
from .trainer_kwargs import (
    accelerator_arguments,
    check_optimizer_kwargs,
    merge_accelerator_kwargs,
    merge_byol_kwargs,
    merge_checkpoint_folder,
    merge_optimizer_kwargs,
)

DEFAULT_LR = {"adam": 3e-4, "adamw": 3e-4, "sgd": 0.05, "lars": 0.2}

__all__ = ["BYOLTrainer", "DiskFullError", "NonFiniteLossError", "NonFiniteStateError", "load_metrics"]


class BYOLTrainer:
    """Pretrains ``net`` with BYOL on ``dataset`` using Hugging Face Accelerate.

    The same script runs on one process (``python train.py``) and on many
    (``accelerate launch train.py``). ``batch_size`` is per process.

    Args:
        net: the image network to improve (trained in place).
        dataset: any dataset of images: items may be tensors, PIL images,
            numpy arrays or ``(image, label)`` pairs (labels ignored). An
            :class:`~byol_pytorch.data.ImageFolderDataset` is read through
            a copy that crops both views in the loader workers from the whole
            photo and sends them as uint8 (``loader_crops``; not with
            ``augment_fn``), the colour part running on the device.
        image_size: side of the augmented views, int or ``(height, width)``.
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
            num_train_steps, batch_size, checkpoint_every, ...).

    Raises:
        ValueError: two ways of giving one option disagree (the message names both).
        TypeError: an unknown option, or a dict key its target does not take.
    """

    def __init__(
        self,
        net: nn.Module,
        dataset: Dataset,
        image_size: int | tuple[int, int],
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
        merge_checkpoint_folder(options, checkpoint_folder)
        views = {"augment_fn": augment_fn, "augment_fn2": augment_fn2, "normalize": normalize}
        byol_extra = merge_byol_kwargs(byol_kwargs, options, views, image_size)
        self.optimizer_kwargs = merge_optimizer_kwargs(optimizer_kwargs, options)
        accelerator_overrides = merge_accelerator_kwargs(accelerator_kwargs, options)
        self.config = config = TrainerConfig.from_kwargs(**options)
        check_trackers(config.log_with if accelerator is None else None)
        check_optimizer_kwargs(optimizer_class(optimizer_klass or config.optimizer), self.optimizer_kwargs)
        self.net, self.dataset, self.eval_dataset = net, dataset, eval_dataset
        if probe_dataset is not None and eval_dataset is None:
            raise ValueError("probe_dataset was given without eval_dataset; the probe is scored on eval_dataset")
        self.probe_dataset = probe_dataset
        self._probe: OnlineProbe | None = None
        self.output_dir = Path(config.output_dir)
        if not config.resume and list_checkpoints(self.output_dir):
            raise FileExistsError(
                f"{self.output_dir} already holds checkpoints; pass resume=True to continue that run "
                "or choose another output_dir"
            )
        self.learner = BYOL(net, image_size, **{
            "hidden_layer": config.hidden_layer, "projection_size": config.projection_size,
            "projection_hidden_size": config.projection_hidden_size, **views,
            "moving_average_decay": config.moving_average_decay, "use_momentum": config.use_momentum,
            # The trainer swaps in SyncBatchNorm itself on multi-GPU runs; the heads follow the same rule.
            "sync_batchnorm": None if config.sync_batchnorm else False,
            "ema_total_steps": config.num_train_steps if config.ema_schedule else None,
            "ema_buffers": config.ema_buffers, "concat_views": config.concat_views,
            "channels_last": config.channels_last, **byol_extra,
        })
        if accelerator is None:
            multi = accelerator_is_distributed()
            # Only a traced graph drops the layers after the hidden one; otherwise (a hook, timm's
            # pre-logits, one field of a transformers output) the classifier's parameters get no gradient.
            unused = multi and self.learner.online_encoder.mode not in ("traced", "output")
            if unused:
                warnings.warn("the network is not cut at the hidden layer, so layers after it keep "
                              "parameters without gradients; DDP will search for unused parameters (slower)")
            on_cpu = accelerator_overrides.get("cpu") or not torch.cuda.is_available()
            accelerator = Accelerator(**accelerator_arguments({
                "mixed_precision": resolve_mixed_precision(config.mixed_precision, "cpu" if on_cpu else "cuda"),
                "gradient_accumulation_steps": config.gradient_accumulation_steps,
                "log_with": config.log_with, "project_dir": str(self.output_dir),
                # non_blocking: pinned batches are copied to the GPU while it computes.
                "dataloader_config": DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed,
                                                             non_blocking=True),
                "kwargs_handlers": [DistributedDataParallelKwargs(find_unused_parameters=unused)],
            }, accelerator_overrides))
        self.accelerator = accelerator
        self.optimizer_klass = optimizer_klass
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.data_wait_s = 0.0
        self.train_dataset = self._training_dataset()

    # -- set-up ------------------------------------------------------------------

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
                               **self.optimizer_kwargs)

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
        return DataLoader(
            self.train_dataset, batch_size=c.batch_size, shuffle=True, drop_last=True, collate_fn=collate,
            num_workers=workers, pin_memory=self.accelerator.device.type == "cuda",
            persistent_workers=workers > 0, generator=torch.Generator().manual_seed(c.seed),
        )

    # -- checkpoints ---------------------------------------------------------------

    def _state(self, optimizer: Any, epoch: int, batch_in_epoch: int, rng: list[dict[str, Any]]) -> dict[str, Any]:
        learner = self.accelerator.unwrap_model(self._model)
        state = {
            "format": 2, "step": self.step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
            "learner": learner.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": self._scheduler.state_dict(), "rng": rng[0], "rng_per_process": rng,
            "config": {k: v for k, v in self.config.to_dict().items() if isinstance(v, (int, float, str, bool))},
        }
        if self.accelerator.scaler is not None:
            state["scaler"] = self.accelerator.scaler.state_dict()
        if self._probe is not None:
            state["probe"] = self._probe.state_dict()
        return state

    def sync_buffers(self) -> None:
        """Averages batch-norm running statistics over processes (online and target).

        DDP keeps parameters equal, but each process's batch norm tracks the
        statistics of its own shard; averaging them at every checkpoint and at
        the end gives every process, and the saved network, the same state.
        """
        if self.accelerator.num_processes == 1:
            return
        learner = self.accelerator.unwrap_model(self._model)
        with torch.no_grad():
            for buffer in learner.buffers():
                if buffer.is_floating_point():
                    buffer.copy_(self.accelerator.reduce(buffer.clone(), "mean"))

    def check_state_finite(self, optimizer: Any) -> None:
        """Raises :class:`NonFiniteStateError` if any weight, buffer or optimiser state is NaN or infinite.

        Online and target networks, heads and the optimiser's moments are read
        in one fused pass. Every process checks its own copy and they agree
        on the verdict, so all of them stop together.
        """
        learner = self.accelerator.unwrap_model(self._model)
        # The user's own names first (they are what net.pt holds), then what only the learner has.
        mine = [(f"net.{k}", v) for k, v in self.net.state_dict().items()]
        seen = {v.data_ptr() for _, v in mine}
        rest = [(f"learner.{k}", v) for k, v in learner.state_dict().items()
                if isinstance(v, torch.Tensor) and v.data_ptr() not in seen]
        names = {p: n for n, p in learner.named_parameters()}
        moments = [(f"optimizer.{names.get(p, '?')}.{key}", value)
                   for p, slots in optimizer.state.items() for key, value in slots.items()
                   if isinstance(value, torch.Tensor)]
        bad = first_non_finite(itertools.chain(mine, rest, moments))
        flag = torch.tensor(float(bad is not None), device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            flag = self.accelerator.reduce(flag, "sum")
        if flag.item() > 0:
            name = bad or "a tensor on another process"
            raise NonFiniteStateError(
                f"{name} holds NaN or infinite values at step {self.step}; nothing of this step was saved and "
                f"the newest checkpoint in {self.output_dir} is the last good one. Lower the learning rate, "
                "set max_grad_norm or try mixed_precision='no'", name, self.step)

    def save_checkpoint(self, optimizer: Any, epoch: int, batch_in_epoch: int) -> Path | None:
        """Writes the full training state, ``net.pt`` and ``net.safetensors`` (main process only); returns the path.

        Raises:
            NonFiniteStateError: a tensor of the state is not finite; nothing is written.
            DiskFullError: the disk filled up; what was saved before is intact.
        """
        self.sync_buffers()
        self.check_state_finite(optimizer)
        # Every process draws its own augmentations: each one's generators are saved, so that a
        # resumed multi-process run continues exactly as an uninterrupted one.
        rng = gather_rng_states(self.accelerator)
        if not self.accelerator.is_main_process:
            return None
        path = atomic_save(self._state(optimizer, epoch, batch_in_epoch, rng),
                           self.output_dir / checkpoint_name(self.step))
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
            except ValueError as err:
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
            ValueError: the checkpoint asked for is corrupt (on every process).
        """
        if not self.config.resume:
            return None, None
        acc = self.accelerator
        decision: dict[str, Any] = {}
        data = None
        if acc.is_main_process:
            try:
                path = self._resume_path()
            except (FileNotFoundError, ValueError) as err:
                decision = {"error": type(err).__name__, "message": str(err)}
            else:
                decision = {"path": None if path is None else str(path)}
                if path is not None and acc.num_processes > 1:
                    data = path.read_bytes()
        if acc.num_processes > 1:
            decision = json.loads(broadcast_bytes(acc, json.dumps(decision).encode()))
        if "error" in decision:
            cls = FileNotFoundError if decision["error"] == "FileNotFoundError" else ValueError
            raise cls(decision["message"])
        if decision["path"] is None:
            return None, None
        path = Path(decision["path"])
        if acc.num_processes == 1:
            return path, safe_load(path)
        # Every process, the main one included, loads the very bytes that were sent.
        data = broadcast_bytes(acc, data)
        return path, torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)

    def _load(self, state: dict[str, Any], optimizer: Any) -> tuple[int, int]:
        self.accelerator.unwrap_model(self._model).load_state_dict(state["learner"])
        optimizer.load_state_dict(state["optimizer"])
        if "scheduler" in state:
            self._scheduler.load_state_dict(state["scheduler"])
        else:  # format 1: the schedule is a function of the step
            self._scheduler.last_epoch = int(state["step"]) - 1
            self._scheduler.step()
        if "scaler" in state and self.accelerator.scaler is not None:
            self.accelerator.scaler.load_state_dict(state["scaler"])
        restore_rng_state(self._own_rng_state(state))
        self.step = int(state["step"])
        return int(state["epoch"]), int(state["batch_in_epoch"])

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
        from .progress import RunLogger

        c, acc = self.config, self.accelerator
        set_seed(c.seed, device_specific=True)
        net_device = next(self.net.parameters()).device
        restore_bn = None
        if c.sync_batchnorm and acc.num_processes > 1 and acc.device.type == "cuda":
            restore_bn = convert_sync_batchnorm(self.learner)
        if c.channels_last:
            self.learner.to(memory_format=torch.channels_last)
        optimizer = self._build_optimizer()
        self._scheduler = self._build_scheduler(optimizer)
        loader = self._dataloader()
        if acc.is_main_process:
            for stale in remove_stale_temporaries(self.output_dir):
                acc.print(f"removed {stale}, left by a process killed while saving")
        if self._encoded:  # compressed files stay on the host: the decoder reads them from there
            model, optimizer = acc.prepare(self.learner, optimizer)
            loader = acc.prepare_data_loader(loader, device_placement=False)
        else:
            model, optimizer, loader = acc.prepare(self.learner, optimizer, loader)
        self._model = model
        if c.compile:
            model = torch.compile(model)
        epoch = batch_in_epoch = 0
        resume_from, resume_state = self._shared_resume()
        if resume_state is not None:
            epoch, batch_in_epoch = self._load(resume_state, optimizer)
            where = f" (the main process's choice, sent to all {acc.num_processes})" if acc.num_processes > 1 else ""
            acc.print(f"resumed from {resume_from} at step {self.step}{where}")
        learner = acc.unwrap_model(self._model)
        self._probe = self._build_probe(learner, (resume_state or {}).get("probe"))
        logger = RunLogger(self, acc, start_step=self.step)
        try:
            while self.step < c.num_train_steps:
                loader.set_epoch(epoch)
                if isinstance(self.train_dataset, ImageFolderDataset):
                    self.train_dataset.set_epoch(epoch)  # the loader crops of this epoch
                batches = acc.skip_first_batches(loader, batch_in_epoch) if batch_in_epoch else loader
                for images in _timed(batches, logger):
                    if isinstance(images, EncodedBatch):
                        images = decode_views(images, learner.image_size, acc.device)
                    with acc.accumulate(model):
                        if isinstance(images, CroppedViews):
                            out = model(views=images, return_details=True)
                        else:
                            out = model(images, return_details=True)
                        acc.backward(out.loss)
                        if acc.sync_gradients and c.max_grad_norm:
                            acc.clip_grad_norm_(model.parameters(), c.max_grad_norm)
                        optimizer.step()
                        optimizer.zero_grad(set_to_none=True)
                    batch_in_epoch += 1
                    logger.record(out, images[0].shape[0] if isinstance(images, CroppedViews) else images.shape[0])
                    if not acc.sync_gradients:
                        continue
                    # The rate and decay this step used, read before either schedule advances.
                    lr, tau = optimizer.param_groups[0]["lr"], learner.current_tau
                    learner.update_moving_average()
                    self._scheduler.step()
                    self.step += 1
                    if self.step % c.log_every == 0 or self.step == c.num_train_steps:
                        logger.log(self.step, lr, tau)
                    if c.knn_every and self.eval_dataset is not None and self.step % c.knn_every == 0:
                        logger.log_knn(self.step, self.knn_accuracy())
                    if self._probe is not None:
                        loss = self._probe.train_step(learner, acc.device)
                        if c.knn_every and self.step % c.knn_every == 0 or self.step == c.num_train_steps:
                            logger.log_probe(self.step, self._probe.accuracy(learner, self.eval_dataset, acc.device),
                                             loss)
                    if self.step % c.checkpoint_every == 0 or self.step == c.num_train_steps:
                        logger.check_finite(self.step)
                        self.save_checkpoint(optimizer, epoch, batch_in_epoch)
                    if self.step >= c.num_train_steps:
                        break
                else:
                    epoch, batch_in_epoch = epoch + 1, 0
        except DiskFullError as err:
            intact = list_checkpoints(self.output_dir)
            resume = (f"the last intact checkpoint is {intact[-1]}; free some space and resume from it"
                      if intact else "no checkpoint of this run was written yet")
            raise DiskFullError(f"{err} at step {self.step}; {resume}", err.path) from err
        finally:
            self.data_wait_s = logger.total_wait
            logger.close()
            if restore_bn is not None:
                restore_bn()
            self.net.to(device=net_device, memory_format=torch.contiguous_format)
        # ImageFolderDataset counts the files its DataLoader workers met too; with
        # several processes this is the main process's share of the data.
        skipped = getattr(self.dataset, "skipped_count", 0)
        if skipped:
            acc.print(f"{skipped} of the {len(self.dataset)} image files could not be read and were skipped "
                      f"(each named above when first met); training used the other {len(self.dataset) - skipped}")
        acc.end_training()
        return self.net

    def _build_probe(self, learner: BYOL, state: dict[str, Any] | None) -> OnlineProbe | None:
        """The online linear probe (main process only), continued from ``state`` when resuming."""
        if self.probe_dataset is None or not self.accelerator.is_main_process:
            return None
        with torch.random.fork_rng(devices=[]):  # reading the labels draws nothing from the run's RNG
            classes = count_classes(self.probe_dataset)
        probe = OnlineProbe(learner.representation_dim, classes, self.probe_dataset, self.config.batch_size,
                            self.config.seed, device=self.accelerator.device)
        if state is not None:
            probe.load_state_dict(state)
        return probe

    def knn_accuracy(self) -> float:
        """kNN top-1 of the current online encoder on ``eval_dataset`` (half bank, half queries)."""
        learner = self.accelerator.unwrap_model(self._model)
        features, labels = extract_features(FrozenEncoder(learner), self.eval_dataset, batch_size=256,
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


def load_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The JSON-lines metrics of a run folder."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


