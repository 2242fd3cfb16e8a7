"""HealthChecks: a NaN loss stops the run when a step is logged or saved; collapse warns once."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch

from byol_pytorch.errors import NonFiniteLossError
from byol_pytorch.training.callbacks.base import TrainerControl, TrainerState
from byol_pytorch.training.callbacks.health import HealthChecks

from .conftest import OneProcessAccelerator


def _batch(checks: HealthChecks, trainer, state: TrainerState, loss: float) -> None:
    output = SimpleNamespace(loss=torch.tensor(loss))
    checks.on_batch_end(trainer, state, TrainerControl(), output=output)


def test_a_nan_loss_stops_the_run_on_the_next_step_due_for_a_log_or_a_save(tmp_path) -> None:
    checks, trainer = HealthChecks(16, tmp_path), SimpleNamespace(accelerator=OneProcessAccelerator())
    state = TrainerState(max_steps=10, step=3)
    _batch(checks, trainer, state, 1.0)
    checks.on_step_end(trainer, state, TrainerControl(should_log=True))  # finite: goes on
    _batch(checks, trainer, state, float("nan"))
    checks.on_step_end(trainer, state, TrainerControl())  # not due: not read yet
    state.step = 5
    with pytest.raises(NonFiniteLossError, match=f"NaN or infinite by step 5.*{tmp_path}"):
        checks.on_step_end(trainer, state, TrainerControl(should_save=True))


def test_collapse_warns_once_on_the_main_process(tmp_path) -> None:
    checks, trainer = HealthChecks(16, tmp_path), SimpleNamespace(accelerator=OneProcessAccelerator())
    state = TrainerState(max_steps=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checks.on_log(trainer, state, TrainerControl(), logs={"step": 4, "representation_std": 0.25})  # 1/sqrt(16)
        for step in (5, 6):
            checks.on_log(trainer, state, TrainerControl(), logs={"step": step, "representation_std": 1e-4})
    assert [str(w.message)[:40] for w in caught] == ["representation collapse suspected at ste"]
    assert "step 5" in str(caught[0].message)
