"""Experiment trackers: refuse, before training, one whose package is not installed.

Accelerate leaves out a tracker it cannot import without saying so, and the
run then finishes with no event file at all; asking for it should fail at once
with the install that fixes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import OptionError

# Accelerate's tracker name -> (its availability check in accelerate.utils, the pip package).
TRACKER_PACKAGES = {
    "tensorboard": ("is_tensorboard_available", "tensorboard"),
    "wandb": ("is_wandb_available", "wandb"),
    "comet_ml": ("is_comet_ml_available", "comet-ml"),
    "aim": ("is_aim_available", "aim"),
    "mlflow": ("is_mlflow_available", "mlflow"),
    "clearml": ("is_clearml_available", "clearml"),
    "dvclive": ("is_dvclive_available", "dvclive"),
    "swanlab": ("is_swanlab_available", "swanlab"),
    "trackio": ("is_trackio_available", "trackio"),
}


def tracker_names(log_with: str | Sequence[object] | None) -> list[str]:
    """The tracker names of a ``log_with`` value (a name, ``"all"``, a list, or ``None``)."""
    if log_with is None:
        return []
    items = [log_with] if isinstance(log_with, str) else list(log_with)
    return [str(getattr(item, "value", item)) for item in items if isinstance(item, str) or hasattr(item, "value")]


def check_trackers(log_with: str | Sequence[object] | None) -> None:
    """Raises if a tracker of ``log_with`` is unknown or its package is not installed.

    Args:
        log_with: the trainer's ``log_with`` (``"tensorboard"``, ``["wandb", "tensorboard"]``, ...).
            Tracker objects (instances of accelerate's ``GeneralTracker``) are not checked.

    Raises:
        OptionError: names the tracker and the ``pip install`` that provides it, or the known names.
    """
    import accelerate.utils

    for name in tracker_names(log_with):
        if name == "all":
            continue
        if name not in TRACKER_PACKAGES:
            raise OptionError("log_with", f"{name!r} is not a tracker accelerate knows; "
                                          f"expected one of {', '.join(TRACKER_PACKAGES)} or 'all'")
        check, package = TRACKER_PACKAGES[name]
        available = getattr(accelerate.utils, check, None)
        if available is not None and not available():
            raise OptionError("log_with", f"{name!r} needs the {package} package, which is not installed: "
                                          f"pip install {package}")
