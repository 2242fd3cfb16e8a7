"""The flags of ``byol-pytorch train`` that mirror :class:`byol_pytorch.TrainerConfig`.

One flag per dataclass field, generated from its name and type: underscores
become dashes, booleans get ``--no-...``, optional fields accept ``none``.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from ..config import TrainerConfig

# Where ``train`` departs from TrainerConfig's defaults, and why: the command
# with no flags is the built-in demo, which must finish in minutes on a 2-core
# CPU and show that BYOL learned something. Measured on 2 shared cores, ResNet-18
# at 16 px with the digit views (kNN top-1 / linear probe on the held-out
# digits, trained vs the same network at random initialisation):
#   seed 0: 300 steps 0.929 / 0.947, 600 steps 0.940-0.962 / 0.962-0.973,
#           800 steps 0.949 / 0.978 (3.5 min in all), 900 steps 0.931 / 0.978;
#           random init 0.898 / 0.958
#   seeds 1, 2 at 600 steps: 0.944 / 0.976 vs 0.924 / 0.962; 0.936 / 0.967 vs 0.896 / 0.940
# The paper's photo views stayed below random init (0.867 / 0.887 at 300
# steps), and so did LARS, SGD and Adam at 1e-4 or 1e-3 with them.
CLI_DEFAULTS: dict[str, Any] = {
    "num_train_steps": 800,  # 38 epochs of the 1,347 training digits
    "batch_size": 64,  # enough for the batch norms of the heads, small enough for a CPU
    "projection_hidden_size": 1024,  # the paper's 4096 is sized for ImageNet; 4x cheaper heads
    "checkpoint_every": 100,
    # A ResNet-18 checkpoint (online, target, heads, Adam) is ~200 MB: keep the
    # newest and one before it, in case the newest is damaged.
    "keep_checkpoints": 2,
    "knn_every": 50,  # the monitor takes well under a second on the 450 test digits at 16 px
    "output_dir": None,  # runs/byol-YYYYmmdd-HHMMSS
    "hidden_layer": None,  # chosen from the model (see default_hidden_layer)
    "num_workers": None,  # 0 for the in-memory digits, the trainer's default for a folder
}

# Short names accepted next to the generated flags.
ALIASES = {"num_train_steps": ["--steps"], "learning_rate": ["--lr"], "output_dir": ["--out"]}

# Help for fields whose dataclass metadata has none.
FIELD_HELP = {
    "hidden_layer": "the layer whose output is the representation: a module name (avgpool, layer4, encoder) "
                    "or a child index; default: chosen from the model (see --model)",
    "projection_size": "output width of projector and predictor",
    "projection_hidden_size": "hidden width of projector and predictor",
    "use_momentum": "BYOL's moving-average target (--no-use-momentum or --simsiam gives SimSiam)",
    "moving_average_decay": "base EMA decay tau of the target",
    "concat_views": "run both views in one batch (faster on small batches)",
    "num_train_steps": "optimiser steps",
    "weight_decay": "weight decay (default: the optimiser's own)",
    "gradient_accumulation_steps": "batches per optimiser step",
    "max_grad_norm": "clip gradients to this norm",
    "channels_last": "channels-last memory format",
    "compile": "torch.compile the learner",
    "num_workers": "DataLoader worker processes; default: 0 for the built-in digits (held in memory), else "
                   "from the usable cores: on a GPU all but one per process (at most 16), on a CPU a quarter",
    "output_dir": "the run folder; default: runs/byol-YYYYmmdd-HHMMSS (must not exist unless --resume)",
    "checkpoint_every": "steps between checkpoints (and net.pt)",
    "keep_checkpoints": "newest checkpoints kept",
    "resume": "continue the run in --out from its latest checkpoint, or from PATH (a checkpoint or run folder)",
    "seed": "seed of the initial weights, batches and augmentations",
    "log_every": "steps between lines of metrics.jsonl",
    "knn_every": "steps between kNN accuracy checks on the evaluation images (0: never)",
    "knn_k": "neighbours of the kNN vote",
    "progress": "show a progress bar",
}

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _union_members(annotation: Any) -> tuple[list[type], bool]:
    """The non-None member types of an annotation and whether None is allowed."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        members = list(typing.get_args(annotation))
    else:
        members = [annotation]
    optional = type(None) in members
    return [m for m in members if m is not type(None)], optional


def _value_parser(members: Sequence[type], optional: bool) -> Callable[[str], Any]:
    """Parses a flag's text as the first member type that accepts it (``none`` for None)."""
    order = [t for t in (int, float, bool, str) if t in members]

    def parse(text: str) -> Any:
        if optional and text.strip().lower() in ("none", "null", ""):
            return None
        for kind in order:
            if kind is int:
                try:
                    return int(text)
                except ValueError:
                    continue
            elif kind is float:
                try:
                    return float(text)
                except ValueError:
                    continue
            elif kind is bool:
                if text.lower() in _TRUE:
                    return True
                if text.lower() in _FALSE:
                    return False
            else:
                return text
        expected = " or ".join(t.__name__ for t in order) + (" or none" if optional else "")
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")

    parse.__name__ = "/".join(t.__name__ for t in order) + ("/none" if optional else "")
    return parse


def add_config_flags(parser: argparse.ArgumentParser, defaults: dict[str, Any] | None = None) -> None:
    """Adds one flag per TrainerConfig field, named and typed after the field.

    ``bool`` fields become ``--flag/--no-flag``; optional fields also accept
    ``none``; ``str | int`` fields (``--hidden-layer``) read numbers as ints;
    ``bool | str`` (``--resume``) is a switch that can take a value.
    """
    defaults = defaults or {}
    hints = typing.get_type_hints(TrainerConfig)
    group = parser.add_argument_group("trainer options (TrainerConfig)")
    for field in dataclasses.fields(TrainerConfig):
        name = field.name
        flags = ["--" + name.replace("_", "-"), *ALIASES.get(name, [])]
        default = defaults.get(name, field.default)
        members, optional = _union_members(hints[name])
        text = field.metadata.get("help") or FIELD_HELP.get(name, name.replace("_", " "))
        if members == [bool] and not optional:
            group.add_argument(*flags, dest=name, default=default, action=argparse.BooleanOptionalAction,
                               help=f"{text} (default: {'on' if default else 'off'})")
        elif bool in members:
            group.add_argument(*flags, dest=name, default=default, nargs="?", const=True, metavar="PATH",
                               type=_value_parser(members, optional), help=text)
        elif field.metadata.get("choices"):
            group.add_argument(*flags, dest=name, default=default, choices=field.metadata["choices"],
                               help=text + " (default: %(default)s)")
        else:
            shown = "" if default is None else " (default: %(default)s)"
            group.add_argument(*flags, dest=name, default=default, type=_value_parser(members, optional),
                               metavar=_metavar(name, members), help=text + shown)


def _metavar(name: str, members: Sequence[type]) -> str:
    if name == "hidden_layer":
        return "LAYER"
    if name.endswith("_dir"):
        return "DIR"
    if members == [int]:
        return "N"
    if float in members:
        return "X"
    return "NAME"


def config_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainerConfig fields of parsed ``train`` arguments."""
    return {field.name: getattr(args, field.name) for field in dataclasses.fields(TrainerConfig)}
