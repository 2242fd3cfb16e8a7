"""What happens around the loop's steps, one callback per concern; the trainer's own come first, in this order."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from ...config import TrainerConfig
from .base import CallbackList, TrainerCallback, TrainerControl, TrainerState
from .checkpoints import ResumeFromCheckpoint, SaveCheckpoints
from .health import HealthChecks
from .knn import KnnMonitor
from .preemption import StopOnSignal
from .probe import OnlineProbing
from .run_log import RunLog

__all__ = ["CallbackList", "HealthChecks", "KnnMonitor", "OnlineProbing", "ResumeFromCheckpoint", "RunLog",
           "SaveCheckpoints", "StopOnSignal", "TrainerCallback", "TrainerControl", "TrainerState",
           "default_callbacks"]


def default_callbacks(config: TrainerConfig, representation_dim: int, eval_dataset: Dataset | None = None,
                      probe_dataset: Dataset | None = None) -> list[TrainerCallback]:
    """The trainer's own callbacks for ``config``, in the order they must run.

    A step's events reach them as listed: the stop request first (it makes
    the step one to log and save), the loss checked before it is logged, the
    monitors after the log line, and the checkpoint last, so that it holds
    what the others did at that step.

    Raises:
        ValueError: ``probe_dataset`` without ``eval_dataset`` (the probe is scored on it).
    """
    if probe_dataset is not None and eval_dataset is None:
        raise ValueError("probe_dataset was given without eval_dataset; the probe is scored on eval_dataset")
    callbacks: list[Any] = [StopOnSignal(config.handle_signals), ResumeFromCheckpoint(),
                            HealthChecks(representation_dim, config.output_dir),
                            RunLog(config.output_dir, config.log_with, config.progress, config.to_dict())]
    if eval_dataset is not None:
        callbacks.append(KnnMonitor(eval_dataset, config.knn_k))
    if probe_dataset is not None:
        callbacks.append(OnlineProbing(probe_dataset, eval_dataset, config.batch_size, config.seed))
    return [*callbacks, SaveCheckpoints()]
