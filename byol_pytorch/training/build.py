"""The trainer's pieces, each built by a small function of the config (the trainer calls them; so can you)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import Dataset

from ..compat import check_optimizer_kwargs
from ..config import BYOL_CONFIG_FIELDS, DEFAULT_LEARNING_RATES, TrainerConfig
from ..data import LoaderCrops
from ..data.pipeline import TrainingData
from ..devices import default_num_workers, resolve_mixed_precision
from ..model import BYOL
from ..optim import build_optimizer as optimizer_by_name
from ..optim import optimizer_class, scaled_learning_rate, warmup_cosine

__all__ = ["build_accelerator", "build_data", "build_learner", "build_optimizer", "build_scheduler"]


def build_learner(net: nn.Module, image_size: int | tuple[int, int], config: TrainerConfig,
                  views: Mapping[str, Any] | None = None, byol_extra: Mapping[str, Any] | None = None) -> BYOL:
    """The :class:`~byol_pytorch.BYOL` learner of ``config``'s model options around ``net``.

    Args:
        net: the network to train (trained in place).
        image_size: side of the views, or ``(height, width)``.
        config: the run's options.
        views: ``augment_fn``, ``augment_fn2``, ``normalize``, when given.
        byol_extra: any other ``BYOL`` argument (``channels``, ``trace``, ...).
    """
    return BYOL(net, image_size, **{
        **{name: getattr(config, name) for name in BYOL_CONFIG_FIELDS}, **(views or {}),
        # The trainer swaps in SyncBatchNorm itself on multi-GPU runs; the heads follow the same rule.
        "sync_batchnorm": None if config.sync_batchnorm else False,
        "ema_total_steps": config.num_train_steps if config.ema_schedule else None,
        **(byol_extra or {}),
    })


def build_accelerator(config: TrainerConfig, learner: BYOL, overrides: Mapping[str, Any] | None = None) -> Accelerator:
    """The run's ``Accelerator``: ``config``'s precision, accumulation, trackers and seed, ``overrides`` on top.

    ``kwargs_handlers`` in ``overrides`` are combined with the trainer's: the
    user's, plus each of the trainer's whose class the user did not give.
    """
    overrides = dict(overrides or {})
    multi = int(os.environ.get("WORLD_SIZE", "1")) > 1  # started as one of several processes
    # Only a traced graph drops the layers after the hidden one; otherwise (a hook, timm's
    # pre-logits, one field of a transformers output) the classifier's parameters get no gradient.
    unused = multi and learner.online_encoder.mode not in ("traced", "output")
    if unused:
        warnings.warn("the network is not cut at the hidden layer, so layers after it keep "
                      "parameters without gradients; DDP will search for unused parameters (slower)")
    on_cpu = overrides.get("cpu") or not torch.cuda.is_available()
    handlers: list[Any] = [DistributedDataParallelKwargs(find_unused_parameters=unused)]
    if "kwargs_handlers" in overrides:
        users = list(overrides["kwargs_handlers"] or [])
        handlers = users + [h for h in handlers if type(h) not in {type(u) for u in users}]
    return Accelerator(**{
        "mixed_precision": resolve_mixed_precision(config.mixed_precision, "cpu" if on_cpu else "cuda"),
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "log_with": config.log_with, "project_dir": str(config.output_dir),
        # non_blocking: pinned batches are copied to the GPU while it computes.
        "dataloader_config": DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed,
                                                     non_blocking=True),
        **overrides, "kwargs_handlers": handlers,
    })


def build_optimizer(learner: nn.Module, config: TrainerConfig, global_batch_size: int,
                    optimizer_klass: type[torch.optim.Optimizer] | None = None,
                    device: torch.device | None = None, **kwargs: Any) -> torch.optim.Optimizer:
    """The optimiser of ``config`` (or ``optimizer_klass``) over the learner's trainable parameters.

    The rate is ``learning_rate``, else the optimiser's entry of
    :data:`~byol_pytorch.config.DEFAULT_LEARNING_RATES`; LARS by name scales it
    by ``global_batch_size / 256``.

    Raises:
        TypeError: a key of ``kwargs`` the optimiser does not take.
    """
    name = config.optimizer
    lr = config.learning_rate if config.learning_rate is not None else DEFAULT_LEARNING_RATES[name]
    cls = optimizer_class(optimizer_klass or name)
    check_optimizer_kwargs(cls, kwargs)
    if name == "lars" and optimizer_klass is None:
        lr = scaled_learning_rate(lr, global_batch_size)
    elif issubclass(cls, (torch.optim.Adam, torch.optim.AdamW)) and lr > 1e-2:
        warnings.warn(f"learning_rate {lr} is very high for {cls.__name__} (BYOL's 0.2 is a LARS rate); "
                      "Adam usually collapses above ~1e-3: try 3e-4")
    return optimizer_by_name(learner, optimizer_klass or name, lr, config.weight_decay, device=device, **kwargs)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainerConfig) -> LambdaLR:
    """The learning-rate schedule; step ``k`` (from 0) runs at ``base_lr * factor(k)``.

    ``LambdaLR`` applies ``factor(0)`` when it is built, so the first optimiser
    step is already a warm-up step; the trainer advances it after each step.
    """
    warmup = config.warmup_steps if config.warmup_steps is not None else config.num_train_steps // 20

    def factor(step: int) -> float:
        if config.lr_schedule == "constant":
            return 1.0
        return warmup_cosine(step, config.num_train_steps, warmup)

    return LambdaLR(optimizer, factor)


def build_data(dataset: Dataset, learner: BYOL, config: TrainerConfig, accelerator: Accelerator) -> TrainingData:
    """What feeds the learner: ``dataset`` split over processes, batched, its photos cropped in the loader.

    The loader's crops (``loader_crops``) are drawn with the learner's built-in
    views from whole photos (folders, Hugging Face rows, shards); with
    ``gpu_decode`` their JPEGs travel undecoded.
    """
    crops = None
    if config.loader_crops and getattr(dataset, "views", None) is None and learner.takes_views:
        crops = LoaderCrops(learner.crop_spec, seed=config.seed, encoded_jpegs=config.gpu_decode)
    elif config.gpu_decode:
        warnings.warn("gpu_decode applies to photos (a folder, Hugging Face rows, shards) with loader_crops and "
                      "the built-in augmentation; this run decodes in the loader as usual", stacklevel=3)
    return TrainingData(dataset, batch_size=config.batch_size, num_processes=accelerator.num_processes,
                        process_index=accelerator.process_index, seed=config.seed,
                        num_workers=loader_workers(config, accelerator), device=accelerator.device, crops=crops,
                        image_size=learner.image_size, image_key=config.image_key,
                        shuffle_buffer=config.shuffle_buffer)


def loader_workers(config: TrainerConfig, accelerator: Accelerator) -> int:
    """The loader's worker processes: ``num_workers``, or :func:`~byol_pytorch.devices.default_num_workers`."""
    if config.num_workers is not None:
        return config.num_workers
    # torchrun and accelerate launch say how many processes share this machine.
    per_machine = int(os.environ.get("LOCAL_WORLD_SIZE", accelerator.num_processes))
    return default_num_workers(accelerator.device.type, per_machine)
