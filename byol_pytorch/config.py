"""The trainer's options: one dataclass, mapped one-to-one onto the command line."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainerConfig:
    """Every scalar option of :class:`byol_pytorch.BYOLTrainer`.

    Each field is a keyword argument of the trainer and a ``--flag`` of
    ``byol-pytorch train`` (underscores become dashes).
    """

    # Model
    hidden_layer: str | int = -2
    projection_size: int = 256
    projection_hidden_size: int = 4096
    use_momentum: bool = True
    moving_average_decay: float = 0.99
    ema_schedule: bool = field(default=True, metadata={"help": "cosine tau schedule to 1 over num_train_steps"})
    ema_buffers: str = field(default="average", metadata={"help": "average or copy batch-norm buffers",
                                                          "choices": ("average", "copy")})
    concat_views: bool = False
    # Optimisation
    num_train_steps: int = 100_000
    batch_size: int = field(default=16, metadata={"help": "images per process per step"})
    learning_rate: float | None = field(
        default=None,
        metadata={"help": "Adam/AdamW/SGD: the rate (3e-4 for Adam); LARS: the base rate (0.2) x batch/256. "
                          "The paper's 0.2 is sized for batches of 4096 over ~100k steps: short small-batch "
                          "LARS runs need more (the 800-step demo at batch 64 loses to random init at 0.2 "
                          "and beats it at 3.2)"},
    )
    optimizer: str = field(default="adam",
                           metadata={"help": "the optimiser", "choices": ("adam", "adamw", "sgd", "lars")})
    weight_decay: float | None = None
    lr_schedule: str = field(default="cosine", metadata={"help": "cosine (with warm-up) or constant",
                                                         "choices": ("cosine", "constant")})
    warmup_steps: int | None = field(default=None, metadata={"help": "default: 5%% of num_train_steps"})
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = None
    # Speed
    mixed_precision: str = field(default="auto", metadata={
        "help": "autocast precision; auto: bf16 where the device has it (recent GPUs, AVX512-BF16/AMX CPUs), else no",
        "choices": ("auto", "no", "bf16", "fp16")})
    channels_last: bool = True
    compile: bool = False
    sync_batchnorm: bool = field(default=True, metadata={"help": "SyncBatchNorm on multi-GPU runs"})
    num_workers: int | None = field(default=None, metadata={
        "help": "DataLoader worker processes; default: from the cores this process may use "
                "(byol_pytorch.devices.default_num_workers)"})
    loader_crops: bool = field(default=True, metadata={
        "help": "for an ImageFolderDataset: draw the views' crops and flips in the loader from the whole "
                "photo and send them as uint8 (off: centre-crop the image first, crop on the device)"})
    gpu_decode: bool = field(default=False, metadata={
        "help": "with loader_crops: send JPEGs undecoded and decode them in batches on the GPU "
                "(torchvision.io.decode_jpeg, nvJPEG); other formats are still decoded by the workers"})
    # Run folder, checkpoints, logging
    output_dir: str = "./checkpoints"
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    resume: bool | str = False
    seed: int = 0
    log_every: int = 10
    log_with: str | None = field(default=None, metadata={"help": "accelerate tracker: tensorboard, wandb, ..."})
    knn_every: int = 0
    knn_k: int = 20
    progress: bool = True

    def validate(self) -> None:
        """Raises ``ValueError`` naming the first option out of range."""
        positive = ("projection_size", "projection_hidden_size", "num_train_steps", "batch_size",
                    "gradient_accumulation_steps", "checkpoint_every", "keep_checkpoints", "log_every", "knn_k")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for f in dataclasses.fields(self):
            allowed = f.metadata.get("choices")
            if allowed and getattr(self, f.name) not in allowed:
                raise ValueError(f"{f.name} must be one of {', '.join(allowed)}; got {getattr(self, f.name)!r}")
        if not 0.0 <= self.moving_average_decay <= 1.0:
            raise ValueError(f"moving_average_decay must be in [0, 1], got {self.moving_average_decay!r}")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if self.warmup_steps is not None and not 0 <= self.warmup_steps <= self.num_train_steps:
            raise ValueError(f"warmup_steps must be in [0, num_train_steps], got {self.warmup_steps!r}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be positive, got {self.max_grad_norm!r}")
        if (self.num_workers is not None and self.num_workers < 0) or self.knn_every < 0:
            raise ValueError("num_workers and knn_every must be >= 0")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> TrainerConfig:
        """Builds a config, naming an unknown option and the closest known one."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in kwargs:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise TypeError(f"BYOLTrainer got an unknown option {key!r}{hint}")
        config = cls(**kwargs)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
