"""The projector and predictor MLPs of BYOL and SimSiam."""

from __future__ import annotations

import functools
import warnings

import torch
from torch import nn

# Devices on which torch's SyncBatchNorm can exchange statistics.
SYNC_DEVICES = ("cuda", "xpu", "hpu")


def distributed_world_size() -> int:
    """Processes in torch.distributed's default group (1 when it is not initialised)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


@functools.cache
def _warn_sync_unavailable(device_type: str) -> None:
    # Once per process and device type: every head's batch norm would repeat it.
    warnings.warn(
        f"sync_batchnorm=True, but torch's SyncBatchNorm cannot run on {device_type} tensors; "
        "the heads' batch norm stays per process",
        stacklevel=3,
    )


class HeadBatchNorm(nn.BatchNorm1d):
    """Batch norm of the heads that synchronises its statistics across processes when asked.

    The decision is taken at every training forward, never when the module is
    built, so a learner made before ``torch.distributed`` starts still syncs.
    Outside training, in one process, or with ``sync=False`` it is plain
    ``BatchNorm1d`` (same parameters, buffers and ``state_dict`` keys).

    Args:
        num_features: features C of a ``(B, C)`` input.
        affine: learnable scale and shift.
        sync: ``True``: synchronise whenever ``torch.distributed`` runs more
            than one process (on CPU, where torch cannot, warn once and stay
            per process); ``None``: synchronise when more than one process runs
            on a device that supports it (CUDA), silently per process
            elsewhere; ``False``: never.
    """

    # Not a subclass of nn.SyncBatchNorm: DistributedDataParallel refuses a CPU
    # model holding any SyncBatchNorm, even one that would never synchronise.
    # The synchronised forward is SyncBatchNorm's own, run on this module, which
    # has every attribute it reads.
    process_group = None

    def __init__(self, num_features: int, affine: bool = True, sync: bool | None = None) -> None:
        super().__init__(num_features, affine=affine)
        self.sync = sync

    def _check_non_zero_input_channels(self, x: torch.Tensor) -> None:
        if x.size(1) == 0:
            raise ValueError("batch norm needs at least one input channel")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.sync is not False and distributed_world_size() > 1:
            if x.device.type in SYNC_DEVICES:
                return nn.SyncBatchNorm.forward(self, x)  # type: ignore[arg-type]
            if self.sync:
                _warn_sync_unavailable(x.device.type)
        return super().forward(x)


def head_batch_norm(num_features: int, sync: bool | None, affine: bool = True) -> nn.Module:
    """``BatchNorm1d`` for ``sync=False``, else a :class:`HeadBatchNorm` with that policy."""
    if sync is not None and not isinstance(sync, bool):
        raise TypeError(f"sync_batchnorm must be None, True or False, got {sync!r}")
    if sync is False:
        return nn.BatchNorm1d(num_features, affine=affine)
    return HeadBatchNorm(num_features, affine=affine, sync=sync)


class MLPHead(nn.Sequential):
    """BYOL's projector and predictor: Linear -> BatchNorm -> ReLU -> Linear.

    Args:
        input_dim: features in.
        output_dim: features out (256 in the paper).
        hidden_dim: width of the hidden layer (4096 in the paper).
        sync_batchnorm: the batch norm's policy across processes (see
            :class:`HeadBatchNorm`); ``False`` gives a plain ``BatchNorm1d``.

    Shape:
        ``(B, input_dim)`` -> ``(B, output_dim)``.
    """

    def __init__(
        self, input_dim: int, output_dim: int = 256, hidden_dim: int = 4096, sync_batchnorm: bool | None = None
    ) -> None:
        for name, value in (("input_dim", input_dim), ("output_dim", output_dim), ("hidden_dim", hidden_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        super().__init__(
            nn.Linear(input_dim, hidden_dim),
            head_batch_norm(hidden_dim, sync_batchnorm),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, output_dim),
        )


class SimSiamProjector(nn.Sequential):
    """SimSiam's projector: three linear layers, each followed by batch norm.

    The last batch norm has no affine parameters, as in Chen & He (2020).

    Args:
        input_dim: features in.
        output_dim: features out (2048 in the SimSiam paper).
        hidden_dim: width of the two hidden layers (2048 in the paper).
        sync_batchnorm: the batch norms' policy across processes (see :class:`HeadBatchNorm`).
    """

    def __init__(
        self, input_dim: int, output_dim: int = 2048, hidden_dim: int = 2048, sync_batchnorm: bool | None = None
    ) -> None:
        super().__init__(
            nn.Linear(input_dim, hidden_dim, bias=False),
            head_batch_norm(hidden_dim, sync_batchnorm),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim, bias=False),
            head_batch_norm(hidden_dim, sync_batchnorm),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, output_dim, bias=False),
            head_batch_norm(output_dim, sync_batchnorm, affine=False),
        )


def simsiam_predictor(dim: int, bottleneck_dim: int | None = None, sync_batchnorm: bool | None = None) -> MLPHead:
    """SimSiam's bottleneck predictor ``dim -> dim // 4 -> dim`` (2048 -> 512 -> 2048)."""
    return MLPHead(dim, dim, bottleneck_dim or max(dim // 4, 1), sync_batchnorm)
