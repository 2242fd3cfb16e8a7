"""Training: the loop (``loop.py``), the pieces it is built from (``build.py``, ``options.py``) and the
callbacks that checkpoint, log, monitor and stop it (``callbacks/``)."""

from .build import build_accelerator, build_data, build_learner, build_optimizer, build_scheduler
from .callbacks import TrainerCallback, TrainerControl, TrainerState
from .loop import BYOLTrainer
from .options import resolve_options

__all__ = ["BYOLTrainer", "TrainerCallback", "TrainerControl", "TrainerState", "build_accelerator", "build_data",
           "build_learner", "build_optimizer", "build_scheduler", "resolve_options"]
