"""The loop: a config or keywords, the events every callback gets, on one process and on two (gloo)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from byol_pytorch import BYOLTrainer, MockDataset, TrainerCallback, TrainerConfig
from byol_pytorch.training.callbacks import SaveCheckpoints, StopOnSignal

from .conftest import free_port, state_copy, tiny_cnn

SCRIPT = Path(__file__).parent / "scripts" / "callback_steps.py"
_spec = importlib.util.spec_from_file_location("callback_steps", SCRIPT)
callback_steps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(callback_steps)

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")
FAST = {"hidden_layer": "flatten", "projection_size": 8, "projection_hidden_size": 16, "num_workers": 0,
        "mixed_precision": "no", "progress": False, "batch_size": 4, "num_train_steps": 3}


def _expected_events(steps: int, checkpoint_every: int, batches_per_step: int) -> list[list]:
    """What the recorder of ``scripts/callback_steps.py`` should see: each event with the right step."""
    events: list[list] = [["train_begin", 0]]
    for step in range(1, steps + 1):
        events += [["batch_end", step - 1]] * batches_per_step
        events += [["save", step]] if step % checkpoint_every == 0 or step == steps else []
        events += [["step_end", step], ["log", step]]
    return [*events, ["train_end", steps]]


def _check_recorded(out: Path, rank: int, processes: int) -> None:
    seen = json.loads((out / f"events{rank}.json").read_text())
    assert seen["processes"] == processes
    assert seen["events"] == _expected_events(callback_steps.STEPS, 2, batches_per_step=2)
    assert seen["history"] == list(range(1, callback_steps.STEPS + 1))


def test_a_user_callback_sees_every_event_with_its_step(tmp_path: Path) -> None:
    callback_steps.main(tmp_path)
    _check_recorded(tmp_path, 0, 1)
    own = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["own"] for r in own if "own" in r] == [10 * s for s in range(1, callback_steps.STEPS + 1)]


def test_a_user_callback_sees_every_step_on_two_processes(tmp_path: Path) -> None:
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port())]
    result = subprocess.run([*launch, str(SCRIPT), str(tmp_path)], env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    for rank in (0, 1):
        _check_recorded(tmp_path, rank, 2)


def test_a_config_is_the_one_door_and_keywords_go_on_top(tmp_path: Path) -> None:
    config = TrainerConfig(**FAST, output_dir=str(tmp_path / "a"), crop_scale=(0.5, 1.0))
    torch.manual_seed(0)
    trainer = BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, config=config)
    assert trainer.config is config and trainer.learner.crop_spec.scale == (0.5, 1.0)
    torch.manual_seed(0)
    keywords = BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, **{**FAST, "output_dir": str(tmp_path / "b"),
                                                                    "crop_scale": (0.5, 1.0)})
    assert keywords.config == TrainerConfig(**{**FAST, "output_dir": str(tmp_path / "b"), "crop_scale": (0.5, 1.0)})
    on_top = BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, config=config, batch_size=2)
    assert on_top.config.batch_size == 2 and config.batch_size == 4  # the caller's config is left as it was
    # The same options give the same run, whichever door they came through.
    assert all(torch.equal(a, b) for a, b in zip(state_copy(trainer()).values(), state_copy(keywords()).values()))
    with pytest.raises(TypeError, match="config must be a TrainerConfig, got dict"):
        BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, config=dict(FAST))


def test_callbacks_run_after_the_trainers_own_and_must_be_callbacks(tmp_path: Path) -> None:
    mine = TrainerCallback()
    trainer = BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, callbacks=[mine], output_dir=str(tmp_path), **FAST)
    order = list(trainer.callbacks)
    assert isinstance(order[0], StopOnSignal) and isinstance(order[-2], SaveCheckpoints) and order[-1] is mine
    with pytest.raises(TypeError, match="callbacks must be TrainerCallback instances, got function"):
        BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, callbacks=[lambda *a: None], output_dir=str(tmp_path), **FAST)
