"""One door for the trainer's options: a config, keywords and byol-pytorch 0.9's dicts become one config, once."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..compat import (
    check_prebuilt_learner,
    merge_accelerator_kwargs,
    merge_byol_kwargs,
    merge_checkpoint_folder,
    merge_optimizer_kwargs,
    take_byol_options,
)
from ..config import TrainerConfig, check_known
from ..model import BYOL

__all__ = ["TrainerArguments", "resolve_options"]


@dataclass(frozen=True)
class TrainerArguments:
    """What the trainer is built from, every way of giving an option merged.

    Attributes:
        config: the run's options.
        views: ``augment_fn``, ``augment_fn2`` and ``normalize`` for ``BYOL`` (``None`` where not given).
        byol_extra: the other ``BYOL`` arguments given (``channels``, ``trace``, ...), passed as they are.
        optimizer_kwargs: for the optimiser's constructor, beyond the learning rate and weight decay.
        accelerator_overrides: ``Accelerator`` arguments over the trainer's own.
    """

    config: TrainerConfig
    views: dict[str, Any]
    byol_extra: dict[str, Any]
    optimizer_kwargs: dict[str, Any]
    accelerator_overrides: dict[str, Any]


def resolve_options(config: TrainerConfig | None, options: Mapping[str, Any], *, image_size: Any,
                    prebuilt: BYOL | None, views: Mapping[str, Any],
                    checkpoint_folder: str | os.PathLike[str] | None = None,
                    byol_kwargs: Mapping[str, Any] | None = None,
                    optimizer_kwargs: Mapping[str, Any] | None = None,
                    accelerator_kwargs: Mapping[str, Any] | None = None,
                    accelerator_given: bool = False) -> TrainerArguments:
    """The trainer's config, keywords and byol-pytorch 0.9's dicts as one config and what ``BYOL`` and the rest take.

    A pure function of what the caller passed: ``config`` is used as it is when
    nothing else sets an option; keywords (and the dicts' keys that are config
    fields) are set on a copy of it.

    Args:
        config: a :class:`TrainerConfig`, or ``None`` for its defaults.
        options: the trainer's ``**options`` (config fields and other ``BYOL`` arguments).
        image_size: the trainer's ``image_size``.
        prebuilt: the learner, when the caller passed a built ``BYOL`` as ``net``.
        views: the trainer's ``augment_fn``, ``augment_fn2`` and ``normalize``.
        checkpoint_folder: 0.9's name for ``output_dir``.
        byol_kwargs: 0.9's arguments for ``BYOL``.
        optimizer_kwargs: 0.9's arguments for the optimiser.
        accelerator_kwargs: 0.9's arguments for ``accelerate.Accelerator``.
        accelerator_given: the caller passed an ``Accelerator`` (then ``accelerator_kwargs`` cannot apply).

    Raises:
        ValueError: two ways of giving one option disagree (the message names both).
        TypeError: an unknown option or key, or ``BYOL`` arguments next to a built learner.
        OptionError: an option is out of range.
    """
    if accelerator_given and accelerator_kwargs:
        raise ValueError("accelerator and accelerator_kwargs were both given; pass arguments for a new "
                         "Accelerator or an Accelerator, not both")
    options, views = dict(options), dict(views)
    merge_checkpoint_folder(options, checkpoint_folder)
    byol_kwargs = take_byol_options(byol_kwargs, options)
    if prebuilt is not None:
        check_prebuilt_learner(prebuilt, image_size, byol_kwargs, views, options)
        byol_extra: dict[str, Any] = {}
    else:
        if image_size is None:
            raise TypeError("BYOLTrainer needs image_size (the side of the views) unless net is a BYOL")
        byol_extra = merge_byol_kwargs(byol_kwargs, options, views, image_size)
    optimizer = merge_optimizer_kwargs(optimizer_kwargs, options)
    accelerator = merge_accelerator_kwargs(accelerator_kwargs, options)
    return TrainerArguments(_one_config(config, options), views, byol_extra, optimizer, accelerator)


def _one_config(config: TrainerConfig | None, options: dict[str, Any]) -> TrainerConfig:
    """``config`` with ``options`` set (a new config only if some are given), validated."""
    if config is None:
        return TrainerConfig.from_kwargs(**options)
    if not isinstance(config, TrainerConfig):
        raise TypeError(f"config must be a TrainerConfig, got {type(config).__name__}")
    if options:
        check_known(options)
        config = dataclasses.replace(config, **options)
    config.validate()
    return config
