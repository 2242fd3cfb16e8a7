"""The online linear probe: logged everywhere, learns, and leaves the BYOL run bit-identical."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from byol_pytorch import BYOL, BYOLTrainer, MockDataset
from byol_pytorch.checkpoint import safe_load
from byol_pytorch.metrics import load_metrics
from byol_pytorch.probe import OnlineProbe, count_classes
from byol_pytorch.report import draw_report
from byol_pytorch.training.callbacks import OnlineProbing

from .conftest import BreaksAfter, assert_same_state, reset_accelerate_state, state_copy, tiny_cnn

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


class Labelled(MockDataset):
    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return super().__getitem__(index), index % 2


class DarkAndBright(Dataset):
    """Class 0 is dark noise, class 1 bright noise: linearly separable on almost any feature."""

    def __len__(self) -> int:
        return 32

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        noise = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(index))
        return (0.2 * noise if index % 2 == 0 else 0.8 + 0.2 * noise), index % 2


def _probe(trainer: BYOLTrainer) -> OnlineProbe:
    """The probe the trainer's OnlineProbing callback trained."""
    (probing,) = [cb for cb in trainer.callbacks if isinstance(cb, OnlineProbing)]
    return probing.probe


def _run(tmp_path: Path, name: str, steps: int = 4, **kwargs: object) -> tuple[BYOLTrainer, list[list]]:
    """A tiny run; returns the trainer and every gradient the backbone received, step by step."""
    torch.manual_seed(0)
    net = tiny_cnn()
    grads: list[list[torch.Tensor]] = []

    class Recording(torch.optim.Adam):
        def step(self, closure=None):
            grads.append([p.grad.clone() for p in net.parameters() if p.grad is not None])
            return super().step(closure)

    options = {"hidden_layer": "flatten", "projection_size": 8, "projection_hidden_size": 16, "num_workers": 0,
               "mixed_precision": "no", "progress": False, "log_every": 1, "batch_size": 4, "num_train_steps": steps,
               "checkpoint_every": 2, "knn_every": 2, "eval_dataset": Labelled(16, 12, seed=7),
               "output_dir": str(tmp_path / name), "optimizer_klass": Recording, "learning_rate": 1e-3}
    dataset = kwargs.pop("dataset", None) or MockDataset(16, 32)
    trainer = BYOLTrainer(net, dataset, 16, **{**options, **kwargs})
    trainer()
    return trainer, grads


def test_the_probe_changes_nothing_of_the_byol_run(tmp_path: Path) -> None:
    plain, plain_grads = _run(tmp_path, "plain")
    probed, probed_grads = _run(tmp_path, "probed", probe_dataset=Labelled(16, 20, seed=3))
    assert len(plain_grads) == len(probed_grads) == 4
    for a, b in zip(plain_grads, probed_grads):
        assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
    # Weights, batch-norm statistics, target network and heads: bit-identical.
    assert_same_state(state_copy(plain.net), state_copy(probed.net))
    plain_state = safe_load(tmp_path / "plain" / "checkpoint-00000004.pt")
    probed_state = safe_load(tmp_path / "probed" / "checkpoint-00000004.pt")
    assert_same_state(plain_state["learner"], probed_state["learner"])
    assert "probe" in probed_state and "probe" not in plain_state
    knn = [(r["step"], r["knn_top1"]) for r in load_metrics(tmp_path / "plain") if "knn_top1" in r]
    assert knn == [(r["step"], r["knn_top1"]) for r in load_metrics(tmp_path / "probed") if "knn_top1" in r]


def test_probe_accuracy_is_logged_to_metrics_tensorboard_and_the_report(tmp_path: Path) -> None:
    from .test_trackers import read_scalars

    _run(tmp_path, "run", probe_dataset=Labelled(16, 20, seed=3), log_with="tensorboard")
    records = [r for r in load_metrics(tmp_path / "run") if "probe_top1" in r]
    assert [r["step"] for r in records] == [2, 4]
    assert all(0 <= r["probe_top1"] <= 1 and r["probe_loss"] > 0 for r in records)
    scalars = read_scalars(tmp_path / "run")
    assert scalars["probe_top1"] == pytest.approx({r["step"]: r["probe_top1"] for r in records})
    report = draw_report(load_metrics(tmp_path / "run"), tmp_path / "report.png", representation_dim=8)
    assert report.stat().st_size > 0


def test_a_resumed_run_continues_the_probe_exactly(tmp_path: Path) -> None:
    whole, _ = _run(tmp_path, "whole", probe_dataset=Labelled(16, 20, seed=3))
    with pytest.raises(KeyboardInterrupt):  # dies fetching step 3's batch, after the step-2 checkpoint
        _run(tmp_path, "cut", probe_dataset=Labelled(16, 20, seed=3), dataset=BreaksAfter(8))
    reset_accelerate_state()
    resumed, _ = _run(tmp_path, "cut", steps=4, probe_dataset=Labelled(16, 20, seed=3), resume=True)
    assert_same_state(state_copy(whole.net), state_copy(resumed.net))
    assert_same_state(_probe(whole).classifier.state_dict(), _probe(resumed).classifier.state_dict())


def test_the_probe_learns_a_separable_task() -> None:
    torch.manual_seed(0)
    learner = BYOL(tiny_cnn(), 16, hidden_layer="flatten", projection_size=8, projection_hidden_size=16)
    data = DarkAndBright()
    assert count_classes(data) == 2
    probe = OnlineProbe(learner.representation_dim, 2, data, batch_size=16, seed=0, lr=0.05)
    device = torch.device("cpu")
    before = state_copy(learner)
    rng = torch.get_rng_state()
    losses = [probe.train_step(learner, device) for _ in range(40)]
    assert probe.accuracy(learner, data, device) == 1.0 and losses[-1] < losses[0]
    assert_same_state(state_copy(learner), before)  # the backbone did not move
    assert torch.equal(torch.get_rng_state(), rng)  # and the global RNG did not advance


def test_probe_dataset_needs_eval_dataset(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="probe_dataset was given without eval_dataset"):
        BYOLTrainer(tiny_cnn(), MockDataset(16, 8), 16, hidden_layer="flatten", probe_dataset=Labelled(16, 8),
                    output_dir=str(tmp_path / "run"))
