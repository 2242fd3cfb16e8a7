from __future__ import annotations

import math

import pytest
import torch

from byol_pytorch.model import BYOL, DEFAULT_TAU
from byol_pytorch.model.ema import copy_weights_, cosine_tau, ema_update_

from .conftest import tiny_cnn


def _pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    online, target = tiny_cnn(), tiny_cnn()
    online.bn.running_mean.normal_()
    online.bn.num_batches_tracked += 7
    return target, online


def test_tau_one_leaves_target_and_tau_zero_copies_online() -> None:
    target, online = _pair()
    before = [p.clone() for p in target.parameters()]
    ema_update_(target, online, tau=1.0)
    for b, p in zip(before, target.parameters()):
        assert torch.equal(b, p)
    ema_update_(target, online, tau=0.0)
    for t, o in zip(target.state_dict().values(), online.state_dict().values()):
        assert torch.equal(t, o)


@pytest.mark.parametrize("buffers", ["average", "copy"])
def test_update_is_the_formula(buffers: str) -> None:
    target, online = _pair()
    old_target = {k: v.clone() for k, v in target.state_dict().items()}
    ema_update_(target, online, tau=0.9, buffers=buffers)
    t, o = target.state_dict(), online.state_dict()
    torch.testing.assert_close(t["conv.weight"], 0.9 * old_target["conv.weight"] + 0.1 * o["conv.weight"])
    if buffers == "average":
        expected = 0.9 * old_target["bn.running_mean"] + 0.1 * o["bn.running_mean"]
    else:
        expected = o["bn.running_mean"]
    torch.testing.assert_close(t["bn.running_mean"], expected)
    assert t["bn.num_batches_tracked"].item() == 7  # integers are copied, never averaged


def test_copy_weights_and_structure_check() -> None:
    target, online = _pair()
    copy_weights_(target, online)
    for t, o in zip(target.state_dict().values(), online.state_dict().values()):
        assert torch.equal(t, o)
    with pytest.raises(ValueError, match="different structures"):
        ema_update_(tiny_cnn(), torch.nn.Linear(2, 2), 0.5)
    with pytest.raises(ValueError, match="tau must be in \\[0, 1\\], got 1.5"):
        ema_update_(target, online, 1.5)


def test_the_schedule_and_the_learner_start_from_one_default_tau() -> None:
    learner = BYOL(tiny_cnn(), image_size=16, projection_size=8, projection_hidden_size=16, ema_total_steps=10)
    assert DEFAULT_TAU == 0.99  # SPEC.md: moving_average_decay=0.99
    assert learner.moving_average_decay == DEFAULT_TAU == cosine_tau(0, 10)
    assert learner.current_tau == cosine_tau(0, 10)
    learner.update_moving_average()
    assert learner.current_tau == cosine_tau(1, 10) > DEFAULT_TAU


def test_cosine_schedule_values() -> None:
    assert cosine_tau(0, 100, 0.99) == pytest.approx(0.99)
    assert cosine_tau(50, 100, 0.99) == pytest.approx(0.995)
    assert cosine_tau(100, 100, 0.99) == pytest.approx(1.0)
    assert cosine_tau(250, 100, 0.99) == pytest.approx(1.0)
    assert cosine_tau(25, 100, 0.996) == pytest.approx(1 - 0.004 * (math.cos(math.pi / 4) + 1) / 2)
    with pytest.raises(ValueError, match="total_steps must be positive, got 0"):
        cosine_tau(1, 0)
    with pytest.raises(ValueError, match="base_tau must be in"):
        cosine_tau(1, 10, 1.2)
    with pytest.raises(ValueError, match="step must be >= 0"):
        cosine_tau(-1, 10)


def test_update_allocates_no_new_parameter_tensors() -> None:
    target, online = _pair()
    pointers = [p.data_ptr() for p in target.parameters()]
    ema_update_(target, online, 0.5)
    assert pointers == [p.data_ptr() for p in target.parameters()]
