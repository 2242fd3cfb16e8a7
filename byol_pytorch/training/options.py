"""One door for the trainer's options: a config, keywords and byol-pytorch 0.9's dicts become one config, once."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..compat import (
    merge_accelerator_kwargs,
    merge_byol_kwargs,
    merge_checkpoint_folder,
    merge_optimizer_kwargs,
    take_byol_options,
)
from ..config import BYOL_CONFIG_FIELDS, TrainerConfig, check_known
from ..errors import disagreement
from ..model import BYOL
from ..model.augment import as_size
from ..model.defaults import MODEL_OPTIONS

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


def check_prebuilt_learner(learner: BYOL, image_size: Any, byol_kwargs: Mapping[str, Any],
                           trainer_keywords: Mapping[str, Any], options: dict[str, Any]) -> None:
    """Checks that nothing configures a learner the caller already built; fills ``options`` from it.

    The config then says what the run really uses (it is saved with every checkpoint).

    Raises:
        TypeError: a BYOL argument is given next to a built learner.
        ValueError: ``image_size`` differs from the learner's.
    """
    given = [*byol_kwargs, *(k for k, v in trainer_keywords.items() if v is not None),
             *(k for k in (*BYOL_CONFIG_FIELDS, "ema_schedule") if k in options)]
    if given:
        raise TypeError(f"net is a BYOL learner, so its arguments are set where it is built; got {', '.join(given)} "
                        "here too: pass them to BYOL(...) or pass the network instead of the learner")
    if image_size is not None and as_size(image_size) != learner.image_size:
        raise disagreement("image_size", image_size, "the learner's image_size", learner.image_size)
    options.update(learner_options(learner))


def learner_options(learner: BYOL) -> dict[str, Any]:
    """The config fields a built learner fixes, read from it."""
    options = {name: getattr(learner, name) for name in MODEL_OPTIONS}
    norm = learner.normalize
    options.update(
        ema_schedule=learner.ema_total_steps is not None, crop_scale=tuple(learner.crop_spec.scale),
        mean=norm.mean if norm is not None else None, std=norm.std if norm is not None else None,
        spatial_pool=learner.online_encoder.spatial_pool, token_pool=learner.online_encoder.token_pool)
    return options
