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

# Where ``train`` departs from TrainerConfig's defaults: the command with no
# flags is the built-in demo, which must finish in minutes on a 2-core CPU and
# show that BYOL learned something (the measurements behind these choices are
# in benchmarks/README.md, "The demo's defaults"). The options also named in
# DATA_RUN_DEFAULTS take these values on the demo only (no --data).
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

# A run on the user's images (--data) keeps the demo's steps and batch but not its small-run choices: the
# paper's head widths, checkpoints by training time (a ResNet-50 checkpoint is ~300 MB: every 100 steps would
# be one a minute on a GPU), the newest few kept, and the kNN monitor only with --eval-data, every
# monitor_interval() steps (None here: decided from the evaluation set's size, see cli/train.py).
DATA_RUN_DEFAULTS: dict[str, Any] = {
    "projection_hidden_size": TrainerConfig.projection_hidden_size,  # 4096, the paper's
    "checkpoint_every": "30min",
    "keep_checkpoints": TrainerConfig.keep_checkpoints,  # 3
    "knn_every": None,
}


def run_defaults(on_digits: bool) -> dict[str, Any]:
    """The values of the options whose default depends on the run: the demo's, or a --data run's."""
    return {name: CLI_DEFAULTS[name] if on_digits else value for name, value in DATA_RUN_DEFAULTS.items()}


def train_flag_defaults() -> dict[str, Any]:
    """The parser's defaults of ``train``: CLI_DEFAULTS, and None for the options decided once --data is known."""
    return {**CLI_DEFAULTS, **dict.fromkeys(DATA_RUN_DEFAULTS)}


# What the command line's own defaults are, where they are not a value (the meaning is TrainerConfig's help).
CLI_DEFAULT_NOTES = {
    "hidden_layer": "default: chosen from the model (see --model)",
    "num_workers": "0 for the built-in digits (held in memory)",
    "output_dir": "default: runs/byol-YYYYmmdd-HHMMSS (must not exist unless --resume)",
    "projection_hidden_size": f"default: {CLI_DEFAULTS['projection_hidden_size']} on the demo (no --data), "
                              f"{DATA_RUN_DEFAULTS['projection_hidden_size']} with --data",
    "checkpoint_every": f"default: {CLI_DEFAULTS['checkpoint_every']} steps on the demo, "
                        f"{DATA_RUN_DEFAULTS['checkpoint_every']} with --data",
    "keep_checkpoints": f"default: {CLI_DEFAULTS['keep_checkpoints']} on the demo, "
                        f"{DATA_RUN_DEFAULTS['keep_checkpoints']} with --data",
    "knn_every": f"default: {CLI_DEFAULTS['knn_every']} on the demo; with --data, 0 without --eval-data, else "
                 "an interval sized from the evaluation images to cost under 2%% of the run",
}

# Short names accepted next to the generated flags.
ALIASES = {"num_train_steps": ["--steps"], "learning_rate": ["--lr"], "output_dir": ["--out"]}

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
        # argparse formats help with %: a literal one ("5% of ...") is doubled.
        text = field.metadata["help"].replace("%", "%%")
        if name in CLI_DEFAULT_NOTES:
            text += f"; {CLI_DEFAULT_NOTES[name]}"
        if members == [bool] and not optional:
            group.add_argument(*flags, dest=name, default=default, action=argparse.BooleanOptionalAction,
                               help=f"{text} (default: {'on' if default else 'off'})")
        elif bool in members:
            group.add_argument(*flags, dest=name, default=default, nargs="?", const=True, metavar="PATH",
                               type=_value_parser(members, optional), help=text)
        elif field.metadata.get("nargs"):
            group.add_argument(*flags, dest=name, default=default, nargs=field.metadata["nargs"], type=float,
                               metavar=field.metadata.get("metavar", "X"), help=text)
        elif field.metadata.get("choices"):
            group.add_argument(*flags, dest=name, default=default, choices=field.metadata["choices"],
                               help=text + " (default: %(default)s)")
        else:
            shown = "" if default is None else " (default: %(default)s)"
            group.add_argument(*flags, dest=name, default=default, type=_value_parser(members, optional),
                               metavar=_metavar(name, members), help=text + shown)


def add_source_flags(parser: argparse.ArgumentParser, *, image_key: bool, label_column: bool) -> None:
    """The flags that say where a source's images and labels are (for the commands without TrainerConfig's flags).

    Args:
        parser: the command's parser.
        image_key: add ``--image-key`` (``train`` has it from TrainerConfig).
        label_column: add ``--label-column``.
    """
    if image_key:
        parser.add_argument("--image-key", default=TrainerConfig.image_key, type=_value_parser([str], True),
                            metavar="NAME", help="the column (Hugging Face data, Parquet) holding the images; "
                            "without it, the only image-like column (default: %(default)s)")
    if label_column:
        parser.add_argument("--label-column", default="label", metavar="NAME",
                            help="the column (Hugging Face data, Parquet) holding the class index of each image; "
                            "tar shards read each sample's .cls (default: %(default)s)")


def _metavar(name: str, members: Sequence[type]) -> str:
    if name == "hidden_layer":
        return "LAYER"
    if name.endswith("_dir"):
        return "DIR"
    if set(members) == {int, str}:
        return "N|TIME"
    if members == [int]:
        return "N"
    if float in members:
        return "X"
    return "NAME"


def config_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainerConfig fields of parsed ``train`` arguments."""
    return {field.name: getattr(args, field.name) for field in dataclasses.fields(TrainerConfig)}
