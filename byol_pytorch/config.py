"""The trainer's options: one dataclass, mapped one-to-one onto the command line."""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import OptionError
from .model.defaults import MODEL_DEFAULTS, MODEL_OPTIONS

# The learning rate each optimiser gets when ``learning_rate`` is not given (LARS: the base rate per 256 images).
DEFAULT_LEARNING_RATES = {"adam": 3e-4, "adamw": 3e-4, "sgd": 0.05, "lars": 0.2}
# The fields that are arguments of BYOL under the same name: the model options and the views' crop and normalisation.
BYOL_CONFIG_FIELDS: tuple[str, ...] = (*MODEL_OPTIONS, "crop_scale", "mean", "std", "spatial_pool", "token_pool")
# Fields holding a tuple of floats; a list given for one (a flag's values, JSON) becomes a tuple.
_TUPLE_FIELDS = ("crop_scale", "mean", "std")


# A duration of checkpoint_every: a number and a unit, e.g. 90s, 30min, 2h (the unit in seconds).
DURATION_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds of a duration written as a number and a unit: ``"90s"``, ``"30min"`` (or ``"30m"``), ``"1.5h"``.

    Raises:
        ValueError: not a positive number followed by s, sec, m, min or h.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([a-z]+)\s*", str(text).lower())
    if match is None or match.group(2) not in DURATION_UNITS or float(match.group(1)) <= 0:
        raise ValueError(f"expected a step count or a duration such as 90s, 30min or 2h, got {text!r}")
    return float(match.group(1)) * DURATION_UNITS[match.group(2)]


def _option(default: Any, help: str, **metadata: Any) -> Any:
    return field(default=default, metadata={"help": help, **metadata})


def _check_checkpoint_every(value: Any) -> None:
    """A positive step count or a duration (:func:`parse_duration`); else OptionError naming checkpoint_every."""
    if isinstance(value, str):
        try:
            parse_duration(value)
        except ValueError as err:
            raise OptionError("checkpoint_every", str(err)) from None
    elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise OptionError("checkpoint_every", f"must be a positive integer or a duration such as 30min, got {value!r}")


@dataclass
class TrainerConfig:
    """Every option of :class:`byol_pytorch.BYOLTrainer` that is a value (not a dataset, function or object).

    Each field is a keyword argument of the trainer and a ``--flag`` of
    ``byol-pytorch train`` (underscores become dashes); its ``help`` metadata
    is the one description of it. The model options default to
    :class:`~byol_pytorch.BYOL`'s own defaults (``byol_pytorch.model.defaults``).
    """

    # Model (BYOL's arguments)
    hidden_layer: str | int = _option(
        MODEL_DEFAULTS.hidden_layer, "the layer whose output is the representation: a module name (avgpool, "
        "layer4, encoder) or a child index")
    projection_size: int = _option(MODEL_DEFAULTS.projection_size, "output width of projector and predictor")
    projection_hidden_size: int = _option(MODEL_DEFAULTS.projection_hidden_size,
                                          "hidden width of projector and predictor")
    use_momentum: bool = _option(MODEL_DEFAULTS.use_momentum,
                                 "BYOL's moving-average target (off: SimSiam, the online projection as target)")
    moving_average_decay: float = _option(MODEL_DEFAULTS.moving_average_decay, "base EMA decay tau of the target")
    ema_schedule: bool = _option(True, "cosine tau schedule from moving_average_decay to 1 over num_train_steps")
    ema_buffers: str = _option(MODEL_DEFAULTS.ema_buffers, "average or copy batch-norm buffers into the target",
                               choices=("average", "copy"))
    concat_views: bool = _option(MODEL_DEFAULTS.concat_views,
                                 "run both views in one batch (faster on small batches)")
    crop_scale: tuple[float, float] | None = _option(
        None, "area range of the built-in views' random crops, as fractions of the image (default: "
        "the paper's 0.08 1 from 64 px up, 0.2 1 below)", nargs=2,
        metavar=("LOW", "HIGH"))
    mean: tuple[float, ...] | None = _option(None, "per-channel means of the normalisation (default: ImageNet's)",
                                             nargs="+")
    std: tuple[float, ...] | None = _option(None, "per-channel standard deviations of the normalisation, given "
                                            "with mean", nargs="+")
    spatial_pool: str = _option("avg", "how a (B, C, H, W) hidden output becomes a vector",
                                choices=("avg", "flatten"))
    token_pool: str = _option("cls", "how a (B, N, D) hidden output becomes a vector", choices=("cls", "mean"))
    # Optimisation
    num_train_steps: int = _option(100_000, "optimiser steps")
    batch_size: int = _option(16, "images per process per step")
    learning_rate: float | None = _option(
        None, "Adam/AdamW/SGD: the rate; LARS: the base rate x batch/256 (default: "
        + ", ".join(f"{name} {rate:g}" for name, rate in DEFAULT_LEARNING_RATES.items())
        + "). The paper's 0.2 is sized for batches of 4096 over ~100k steps; short small-batch LARS runs need "
        "more (see docs/trainer.md, Optimisers)")
    optimizer: str = _option("adam", "the optimiser", choices=("adam", "adamw", "sgd", "lars"))
    weight_decay: float | None = _option(None, "weight decay (default: the optimiser's own)")
    lr_schedule: str = _option("cosine", "cosine (with linear warm-up) or constant", choices=("cosine", "constant"))
    warmup_steps: int | None = _option(None, "linear warm-up steps of the cosine schedule; default: 5% of "
                                       "num_train_steps")
    gradient_accumulation_steps: int = _option(1, "batches per optimiser step")
    max_grad_norm: float | None = _option(None, "clip gradients to this norm")
    # Speed
    mixed_precision: str = _option(
        "auto", "autocast precision; auto: bf16 where the device has it (recent GPUs, AVX512-BF16/AMX CPUs), else no",
        choices=("auto", "no", "bf16", "fp16"))
    # Not BYOL's default (views only, on a CPU): the trainer also makes the weights channels-last, which the
    # module leaves alone; benchmarks/README.md has the measurements.
    channels_last: bool = _option(True, "channels-last memory format for the network's weights and views")
    compile: bool = _option(False, "torch.compile the learner")
    sync_batchnorm: bool = _option(True, "SyncBatchNorm on multi-GPU runs")
    num_workers: int | None = _option(
        None, "DataLoader worker processes; default: from the cores this process may use: on a GPU all but one per "
        "process (at most 16), on a CPU a quarter (byol_pytorch.devices.default_num_workers)")
    loader_crops: bool = _option(
        True, "for photos (an ImageFolderDataset, Hugging Face rows, shards, streams of PIL images): draw the "
        "views' crops and flips in the loader from the whole photo and send them as uint8 (off: centre-crop the "
        "image first, crop on the device)")
    gpu_decode: bool = _option(
        False, "with loader_crops: send JPEGs undecoded and decode them in batches on the GPU "
        "(torchvision.io.decode_jpeg, nvJPEG); other formats are still decoded by the workers")
    # Data
    image_key: str | None = _option(
        "image", "the key of a dict item's image (a Hugging Face column, a WebDataset member); an item without "
        "it gives its only image-like value (none: always so)")
    shuffle_buffer: int = _option(1000, "for a stream (no length): samples per loader worker its order is drawn "
                                  "from (1: the source's order)")
    # Run folder, checkpoints, logging
    output_dir: str = _option("./checkpoints", "the run folder: checkpoints, net.pt, metrics.jsonl")
    checkpoint_every: int | str = _option(
        1000, "steps between checkpoints (and net.pt), or the training time between them: 90s, 30min, 2h")
    keep_checkpoints: int = _option(3, "newest checkpoints kept")
    resume: bool | str = _option(False, "continue the run in output_dir from its latest intact checkpoint, or "
                                 "from PATH (a checkpoint or run folder)")
    seed: int = _option(0, "seed of the initial weights, batches and augmentations")
    handle_signals: bool = _option(
        True, "on SIGTERM, SIGINT or SIGUSR1 finish the step, save a checkpoint of it and stop with exit status "
        "128 + the signal's number (143, 130, 138); a second signal stops at once")
    log_every: int = _option(10, "steps between lines of metrics.jsonl")
    log_with: str | None = _option(None, "accelerate tracker: tensorboard, wandb, ...")
    knn_every: int = _option(0, "steps between kNN accuracy checks on the evaluation images (0: never)")
    knn_k: int = _option(20, "neighbours of the kNN vote")
    progress: bool = _option(True, "show a progress bar")

    def __post_init__(self) -> None:
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, list):
                setattr(self, name, tuple(value))

    def validate(self) -> None:
        """Raises :class:`~byol_pytorch.errors.OptionError` naming the first option out of range."""
        check_options(dataclasses.asdict(self))

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> TrainerConfig:
        """Builds a config, naming an unknown option and the closest known one."""
        check_known(kwargs)
        config = cls(**kwargs)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_known(options: Any) -> None:
    """Raises ``TypeError`` for a key of ``options`` that is no field, naming the closest field."""
    known = {f.name for f in dataclasses.fields(TrainerConfig)}
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"BYOLTrainer got an unknown option {key!r}{hint}")


def check_options(values: dict[str, Any]) -> None:
    """Raises :class:`~byol_pytorch.errors.OptionError` naming the first of ``values`` (all the fields) out of range.

    The command line checks its flags with it before it has what a config needs.
    """
    positive = ("projection_size", "projection_hidden_size", "num_train_steps", "batch_size",
                "gradient_accumulation_steps", "keep_checkpoints", "log_every", "knn_k", "shuffle_buffer")
    for name in positive:
        value = values[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise OptionError(name, f"must be a positive integer, got {value!r}")
    _check_checkpoint_every(values["checkpoint_every"])
    for f in dataclasses.fields(TrainerConfig):
        allowed = f.metadata.get("choices")
        if allowed and values[f.name] not in allowed:
            raise OptionError(f.name, f"must be one of {', '.join(allowed)}; got {values[f.name]!r}")
    checks = (
        ("moving_average_decay", 0.0 <= values["moving_average_decay"] <= 1.0, "must be in [0, 1]"),
        ("learning_rate", values["learning_rate"] is None or values["learning_rate"] > 0, "must be positive"),
        ("warmup_steps", values["warmup_steps"] is None or 0 <= values["warmup_steps"] <= values["num_train_steps"],
         "must be in [0, num_train_steps]"),
        ("max_grad_norm", values["max_grad_norm"] is None or values["max_grad_norm"] > 0, "must be positive"),
        ("num_workers", values["num_workers"] is None or values["num_workers"] >= 0, "must be >= 0"),
        ("knn_every", values["knn_every"] >= 0, "must be >= 0"),
    )
    for name, ok, expected in checks:
        if not ok:
            raise OptionError(name, f"{expected}, got {values[name]!r}")
