"""byol-pytorch 0.9's ways of giving the trainer options, and what its trainer had beyond them.

Scripts written for byol-pytorch 0.9 pass ``checkpoint_folder``,
``byol_kwargs`` (to ``BYOL``), ``optimizer_kwargs`` (to the optimiser) and
``accelerator_kwargs`` (to ``accelerate.Accelerator``). Several of their keys
are also keywords of :class:`~byol_pytorch.BYOLTrainer` (``projection_size``,
``augment_fn``, ``mixed_precision``, ``lr`` as ``learning_rate``...). The rule
is the same everywhere: a value given in one place is used; given in both
places with different values, it is an error naming both. Keys that are fields
of :class:`~byol_pytorch.TrainerConfig` move into the options, so the config
(saved with every checkpoint) says what the run really used.
:func:`byol_pytorch.training.options.resolve_options` calls these once.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs

from .config import BYOL_CONFIG_FIELDS, TrainerConfig
from .errors import disagreement
from .model import BYOL
from .model.augment import as_size
from .model.legacy import cycle, exists  # noqa: F401 - 0.9's trainer-module helpers; byol_pytorch.trainer re-exports

# 0.9's trainer gave Accelerate this handler (DDP searching for unused parameters). Here the trainer decides for
# itself (the search is needed only where the network is not cut at the hidden layer); passing it still works.
DEFAULT_DDP_KWARGS = DistributedDataParallelKwargs(find_unused_parameters=True)

_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainerConfig))
# BYOL arguments that are keyword arguments of the trainer itself (not config fields: functions and a tri-state).
BYOL_TRAINER_KEYWORDS = ("augment_fn", "augment_fn2", "normalize")
# optimizer_kwargs keys that are TrainerConfig fields under another name.
OPTIMIZER_CONFIG_FIELDS = {"lr": "learning_rate", "weight_decay": "weight_decay"}


class TrainerAliases:
    """What byol-pytorch 0.9's ``BYOLTrainer`` had beyond its keywords, for scripts that reach for it.

    ``trainer.byol`` (the learner), ``trainer.forward()`` (the training run,
    as ``trainer()``), ``trainer.print(msg)`` and ``trainer.wait()`` (the main
    process's print and a barrier), and the values of ``num_train_steps``,
    ``checkpoint_every`` and ``checkpoint_folder``. Mixed into
    :class:`~byol_pytorch.BYOLTrainer`, whose attributes they read.
    """

    learner: Any
    config: TrainerConfig
    accelerator: Accelerator

    @property
    def byol(self) -> BYOL:
        """The learner (0.9's name for it)."""
        return self.learner

    @property
    def num_train_steps(self) -> int:
        return self.config.num_train_steps

    @property
    def checkpoint_every(self) -> int | str:
        return self.config.checkpoint_every

    @property
    def checkpoint_folder(self) -> Path:
        """The run folder (``output_dir``), as 0.9 kept it: a ``Path``."""
        return Path(self.config.output_dir)

    def forward(self) -> Any:
        """Trains, as ``trainer()`` does."""
        return self()  # type: ignore[operator]

    def print(self, msg: Any) -> None:
        """Prints on the main process only."""
        self.accelerator.print(msg)

    def wait(self) -> None:
        """Waits until every process gets here."""
        self.accelerator.wait_for_everyone()

    def __getattr__(self, name: str) -> Any:
        # Only reached for a missing attribute: 0.9's names that are gone get a message saying what to use.
        if name in _MODULE_ONLY:
            raise AttributeError(f"BYOLTrainer.{name}: byol-pytorch 0.9's trainer was an nn.Module, this one is not; "
                                 f"use trainer.learner.{name} (the BYOL learner) or trainer.net (your network)")
        if name == "dataloader":
            raise AttributeError("BYOLTrainer.dataloader (0.9) is gone: the trainer builds its loader for each run "
                                 "from `dataset`; read trainer.dataset, or wrap it in your own DataLoader")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


# What 0.9's byol_pytorch/trainer.py imported for itself, and from where.
_V09_TRAINER_IMPORTS = {"dist": "import torch.distributed as dist", "Module": "from torch.nn import Module",
                        "SyncBatchNorm": "from torch.nn import SyncBatchNorm",
                        "Optimizer": "from torch.optim import Optimizer", "Adam": "from torch.optim import Adam",
                        "DataLoader": "from torch.utils.data import DataLoader",
                        "beartype": "from beartype import beartype", "Optional": "from typing import Optional"}


def trainer_module_getattr(name: str) -> Any:
    """``byol_pytorch.trainer``'s module ``__getattr__``: 0.9's imports there say where they come from."""
    if name in _V09_TRAINER_IMPORTS:
        # An ImportError, not an AttributeError: `from byol_pytorch.trainer import X` then shows this message.
        raise ImportError(f"byol_pytorch.trainer.{name} was byol-pytorch 0.9's own import; "
                          f"import it from its package: {_V09_TRAINER_IMPORTS[name]}")
    raise AttributeError(f"module 'byol_pytorch.trainer' has no attribute {name!r}")


# nn.Module's methods, which 0.9's BYOLTrainer had by being one.
_MODULE_ONLY = frozenset({"state_dict", "load_state_dict", "parameters", "named_parameters", "buffers",
                          "named_buffers", "modules", "children", "to", "cuda", "cpu", "half", "float", "double",
                          "train", "eval", "register_buffer", "zero_grad", "apply", "requires_grad_"})


def _same(a: Any, b: Any) -> bool:
    """Equal plain values, or the very same object (modules and functions compare by identity)."""
    if a is b:
        return True
    plain = (bool, int, float, str, tuple, list, type(None))
    return isinstance(a, plain) and isinstance(b, plain) and a == b


def _parameters(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(fn).parameters)


def _byol_arguments() -> list[str]:
    """The arguments of ``BYOL`` other than the network itself."""
    return [name for name in _parameters(BYOL.__init__) if name not in ("self", "net")]


def _check_mapping(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of keyword arguments, got {type(value).__name__}")
    return dict(value)


def _unknown_key(dict_name: str, key: str, target: str, known: list[str]) -> TypeError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; it takes: {', '.join(known)}"
    return TypeError(f"{dict_name} has {key!r}, which {target} does not take{hint}")


def merge_checkpoint_folder(options: dict[str, Any], checkpoint_folder: str | os.PathLike[str] | None) -> None:
    """Puts byol-pytorch 0.9's ``checkpoint_folder`` into ``options`` as ``output_dir`` (the same folder).

    Raises:
        ValueError: both are given and name different folders.
    """
    if checkpoint_folder is None:
        return
    given = options.get("output_dir")
    if given is not None and Path(os.path.abspath(given)) != Path(os.path.abspath(checkpoint_folder)):
        raise ValueError(f"checkpoint_folder={str(checkpoint_folder)!r} and output_dir={str(given)!r} name "
                         "different folders; they are the same option (checkpoint_folder is byol-pytorch 0.9's "
                         "name for output_dir): give one")
    options["output_dir"] = os.fspath(checkpoint_folder)


def merge_byol_kwargs(
    byol_kwargs: Mapping[str, Any] | None,
    options: dict[str, Any],
    trainer_keywords: dict[str, Any],
    image_size: int | tuple[int, int],
) -> dict[str, Any]:
    """Splits ``byol_kwargs`` between the trainer's options and the arguments only ``BYOL`` takes.

    Args:
        byol_kwargs: keyword arguments for :class:`~byol_pytorch.BYOL`.
        options: the trainer's config options as given; updated in place with
            the keys that are config fields (``projection_size``, ...).
        trainer_keywords: the trainer's ``augment_fn``, ``augment_fn2`` and
            ``normalize`` (``None`` when not given); updated in place.
        image_size: the trainer's ``image_size``.

    Returns:
        The remaining ``BYOL`` arguments (``mean``, ``crop_scale``,
        ``sync_batchnorm``, ``ema_total_steps``, ...), to pass as they are.

    Raises:
        ValueError: a key disagrees with the trainer's own keyword; the message names both.
        TypeError: a key is no argument of ``BYOL``.
    """
    given = _check_mapping("byol_kwargs", byol_kwargs)
    known = _byol_arguments()
    extra: dict[str, Any] = {}
    for key, value in given.items():
        label = f"byol_kwargs[{key!r}]"
        if key == "net":
            raise TypeError("byol_kwargs has 'net'; the network is the trainer's first argument")
        if key not in known:
            raise _unknown_key("byol_kwargs", key, "BYOL", known)
        if key == "image_size":
            if as_size(value) != as_size(image_size):
                raise disagreement(label, value, "image_size", image_size)
        elif key in BYOL_CONFIG_FIELDS:
            if key in options and not _same(options[key], value):
                raise disagreement(label, value, key, options[key])
            options[key] = value
        elif key in BYOL_TRAINER_KEYWORDS:
            if trainer_keywords[key] is not None and not _same(trainer_keywords[key], value):
                raise disagreement(label, value, key, trainer_keywords[key])
            trainer_keywords[key] = value
        elif key == "sync_batchnorm":
            # The trainer's flag is a bool ("sync on multi-GPU runs"); BYOL's None means the same as True there.
            if "sync_batchnorm" in options and bool(options["sync_batchnorm"]) != (value is not False):
                raise disagreement(label, value, "sync_batchnorm", options["sync_batchnorm"])
            options["sync_batchnorm"] = value is not False
            extra[key] = value
        elif key == "ema_total_steps":
            # The trainer derives it: num_train_steps with ema_schedule=True, None with False.
            if "ema_schedule" in options and bool(options["ema_schedule"]) != (value is not None):
                raise disagreement(label, value, "ema_schedule", options["ema_schedule"])
            options["ema_schedule"] = value is not None
            extra[key] = value
        else:
            extra[key] = value
    return extra


def take_byol_options(byol_kwargs: Mapping[str, Any] | None, options: dict[str, Any]) -> dict[str, Any]:
    """Moves the options that are arguments of ``BYOL`` only (``crop_scale``, ``mean``, ...) into ``byol_kwargs``.

    Returns:
        A new ``byol_kwargs`` holding them; ``options`` keeps the config fields.

    Raises:
        ValueError: one is given both ways with different values.
    """
    merged = _check_mapping("byol_kwargs", byol_kwargs)
    byol_only = set(_byol_arguments()) - _CONFIG_FIELDS
    for key in [k for k in options if k in byol_only]:
        value = options.pop(key)
        if key in merged and not _same(merged[key], value):
            raise disagreement(f"byol_kwargs[{key!r}]", merged[key], key, value)
        merged[key] = value
    return merged


def merge_optimizer_kwargs(optimizer_kwargs: Mapping[str, Any] | None, options: dict[str, Any]) -> dict[str, Any]:
    """Moves ``lr`` (as ``learning_rate``) and ``weight_decay`` into ``options``; returns the rest.

    Raises:
        ValueError: ``lr`` or ``weight_decay`` disagrees with the trainer's keyword.
        TypeError: ``params`` is given (the trainer passes the learner's parameters).
    """
    given = _check_mapping("optimizer_kwargs", optimizer_kwargs)
    if "params" in given:
        raise TypeError("optimizer_kwargs has 'params'; the trainer passes the learner's trainable parameters")
    for key, field in OPTIMIZER_CONFIG_FIELDS.items():
        if key in given:
            value = given.pop(key)
            if options.get(field) is not None and not _same(options[field], value):
                raise disagreement(f"optimizer_kwargs[{key!r}]", value, field, options[field])
            options[field] = value
    return given


def check_optimizer_kwargs(optimizer: type[torch.optim.Optimizer], kwargs: Mapping[str, Any]) -> None:
    """Raises ``TypeError`` now, not at the first step, for a key the optimiser's constructor does not take."""
    parameters = _parameters(optimizer.__init__)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    known = [name for name in parameters if name not in ("self", "params")]
    for key in kwargs:
        if key not in known:
            raise _unknown_key("optimizer_kwargs", key, optimizer.__name__, known)


def merge_accelerator_kwargs(
    accelerator_kwargs: Mapping[str, Any] | None, options: dict[str, Any]
) -> dict[str, Any]:
    """Moves ``mixed_precision``, ``gradient_accumulation_steps`` and ``log_with`` into ``options``.

    Returns:
        The other ``Accelerator`` arguments (``cpu``, ``project_dir``,
        ``kwargs_handlers``, ...), which override the trainer's defaults.

    Raises:
        ValueError: a key disagrees with the trainer's keyword.
        TypeError: a key is no argument of ``Accelerator``.
    """
    given = _check_mapping("accelerator_kwargs", accelerator_kwargs)
    known = [name for name in _parameters(Accelerator.__init__) if name != "self"]
    for key in given:
        if key not in known:
            raise _unknown_key("accelerator_kwargs", key, "accelerate.Accelerator", known)
    # Accelerator arguments that are TrainerConfig fields under the same name (mixed_precision, ...).
    for key in (name for name in known if name in _CONFIG_FIELDS):
        if key in given:
            value = given.pop(key)
            if key == "mixed_precision" and value is not None:
                value = str(getattr(value, "value", value))  # accelerate's PrecisionType enum
            if key in options and not _same(options[key], value):
                raise disagreement(f"accelerator_kwargs[{key!r}]", value, key, options[key])
            options[key] = value
    return given
