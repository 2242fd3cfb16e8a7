"""A run's state: the schedule a resumed run follows, what it says changed, and the records it keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

from byol_pytorch.metrics import SUPERSEDED_FILE, load_metrics, set_aside_records_after
from byol_pytorch.optim import warmup_cosine
from byol_pytorch.run_state import RunLayout, load_contents, option_changes, resume_changes, start_position


def schedule(total: int, lr: float = 0.1) -> tuple[torch.nn.Module, torch.optim.Optimizer, LambdaLR]:
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    return model, optimizer, LambdaLR(optimizer, lambda step: warmup_cosine(step, total, 2))


def run_to(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: LambdaLR, steps: int) -> None:
    for _ in range(steps):
        optimizer.step()
        scheduler.step()


@pytest.mark.parametrize(("total", "lr"), [(20, 0.1), (40, 0.1), (20, 0.4)])
def test_a_resumed_schedule_keeps_its_step_and_takes_this_runs_shape(total: int, lr: float) -> None:
    model, optimizer, scheduler = schedule(20)
    run_to(model, optimizer, scheduler, 12)
    state = {"step": 12, "learner": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict()}
    model2, optimizer2, scheduler2 = schedule(total, lr)
    load_contents(state, learner=model2, optimizer=optimizer2, scheduler=scheduler2, scaler=None)
    expected = lr * warmup_cosine(12, total, 2)
    assert optimizer2.param_groups[0]["lr"] == expected and scheduler2.last_epoch == 12
    if (total, lr) == (20, 0.1):  # the same options: exactly the rate the run had
        assert optimizer2.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    run_to(model2, optimizer2, scheduler2, 1)
    assert optimizer2.param_groups[0]["lr"] == lr * warmup_cosine(13, total, 2)


def test_changes_are_named_in_one_sentence() -> None:
    saved = {"step": 5, "layout": {"processes": 2, "batch_size": 8, "accumulation": 1, "learning_rate": 0.0125,
                                   "num_train_steps": 100}}
    same = RunLayout(2, 8, 1, 0.0125, 100)
    assert resume_changes(saved, same, "lars") is None
    sentence = resume_changes(saved, RunLayout(1, 8, 1, 0.00625, 200), "lars")
    assert sentence == (
        "resuming step 5 with 1 process(es) instead of 2; a global batch of 8 images instead of 16; a base "
        "learning rate of 0.00625 instead of 0.0125 (LARS scales it with the global batch); num_train_steps 200 "
        "instead of 100: the learning rate and tau schedules now run to step 200, from step 5; each process draws "
        "new random states (seeded from seed, step and process), so the augmentations differ from an "
        "uninterrupted run; the data go on from the same image of the same epoch, each of its remaining images "
        "read once")


def test_older_checkpoints_give_their_place_in_images() -> None:
    assert start_position({"images_seen": 123, "step": 3}, 50) == 123
    old = {"format": 2, "step": 7, "epoch": 2, "batch_in_epoch": 3, "rng_per_process": [{}, {}],
           "config": {"batch_size": 4}}
    assert start_position(old, 50) == 2 * 50 + 3 * 4 * 2


def test_records_past_the_resumed_step_are_set_aside(tmp_path: Path) -> None:
    lines = [json.dumps({"step": s, "loss": float(s)}) for s in (5, 10, 12, 15)] + ['{"step": 2']
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert set_aside_records_after(tmp_path, 10) == 3
    assert [r["step"] for r in load_metrics(tmp_path)] == [5, 10]
    assert (tmp_path / SUPERSEDED_FILE).read_text().splitlines() == lines[2:]
    assert set_aside_records_after(tmp_path, 10) == 0 and set_aside_records_after(tmp_path / "none", 0) == 0


def test_options_that_change_training_are_named_when_a_resume_changes_them() -> None:
    saved = {"crop_scale": [0.5, 1.0], "mean": None, "seed": 1}  # an older checkpoint has no token_pool
    assert option_changes(saved, {"crop_scale": (0.5, 1.0), "mean": None, "seed": 2, "token_pool": "mean"}) == []
    assert option_changes(saved, {"crop_scale": (0.3, 1.0), "mean": (0.5,)}) == [
        "crop_scale (0.3, 1.0) instead of [0.5, 1.0]", "mean (0.5,) instead of None"]
    state = {"step": 5, "config": {"batch_size": 8, "optimizer": "adam"}, "rng": {}}
    assert resume_changes(state, RunLayout(1, 8, 1, float("nan"), 0), "adam", {"optimizer": "sgd"}) == (
        "resuming step 5 with optimizer 'sgd' instead of 'adam'")
