"""BYOL's model options and their defaults, named once.

The :class:`~byol_pytorch.BYOL` module's signature takes its defaults from
here, and so do the model fields of the trainer's
:class:`~byol_pytorch.config.TrainerConfig` (hence of ``byol-pytorch train``'s
flags). Nothing here imports torch, so the config can be read without it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# The library's base EMA decay of the target, tau (byol-pytorch 0.9's; the paper's own runs used 0.996).
# Every signature with a tau takes it from here, so that the defaults cannot drift.
DEFAULT_TAU = 0.99


@dataclass(frozen=True)
class ModelOptions:
    """The arguments of :class:`~byol_pytorch.BYOL` that are also options of the trainer, with their defaults.

    Attributes:
        hidden_layer: the layer whose output is the representation (name or child index; -2 as in 0.9).
        projection_size: output width of the projector and predictor.
        projection_hidden_size: hidden width of the projector and predictor.
        moving_average_decay: the base EMA decay tau of the target.
        use_momentum: an EMA target (off: SimSiam).
        ema_buffers: ``"average"`` or ``"copy"`` the batch-norm buffers into the target.
        concat_views: run both views through the networks as one batch.
        channels_last: give the network its views in channels-last memory format; ``None``: on a CPU
            (where a ResNet-18's step took 10-15 % less CPU time so, in float32 with AVX-512 or AVX2
            kernels, with the weights left as they are: benchmarks/README.md), else not.
    """

    hidden_layer: str | int = -2
    projection_size: int = 256
    projection_hidden_size: int = 4096
    moving_average_decay: float = DEFAULT_TAU
    use_momentum: bool = True
    ema_buffers: str = "average"
    concat_views: bool = False
    channels_last: bool | None = None


MODEL_DEFAULTS = ModelOptions()
# Their names, in the order above.
MODEL_OPTIONS: tuple[str, ...] = tuple(f.name for f in fields(ModelOptions))
