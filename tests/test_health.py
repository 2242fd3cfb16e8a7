"""Health checks: the collapse monitor, and the finite-state check that guards every save."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator

from byol_pytorch import BYOL, NonFiniteLossError, NonFiniteStateError
from byol_pytorch.health import COLLAPSE_FRACTION, CollapseMonitor, check_loss_finite, check_state_finite

from .conftest import tiny_cnn

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def test_collapse_is_warned_once_below_a_fraction_of_the_healthy_spread() -> None:
    monitor = CollapseMonitor(representation_dim=64)
    healthy = 1 / math.sqrt(64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert monitor.check(1, healthy) is False
        assert monitor.check(2, COLLAPSE_FRACTION * healthy * 1.01) is False
    with pytest.warns(UserWarning, match="collapse suspected at step 3"):
        assert monitor.check(3, COLLAPSE_FRACTION * healthy * 0.5) is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert monitor.check(4, 0.0) is True  # still collapsed, not warned again


def test_a_nan_running_statistic_is_named_by_the_networks_own_name(tmp_path: Path) -> None:
    net = tiny_cnn()
    learner = BYOL(net, 16, hidden_layer="flatten", projection_size=8, projection_hidden_size=16)
    optimizer = torch.optim.Adam(learner.parameters())
    accelerator = Accelerator(cpu=True)
    check_state_finite(net, learner, optimizer, 3, tmp_path, accelerator)  # all finite: no error
    net.bn.running_mean[2] = float("nan")
    with pytest.raises(NonFiniteStateError, match=r"net\.bn\.running_mean holds NaN .* at step 3") as caught:
        check_state_finite(net, learner, optimizer, 3, tmp_path, accelerator)
    assert (caught.value.tensor, caught.value.step) == ("net.bn.running_mean", 3)


def test_a_non_finite_loss_flag_stops_the_run(tmp_path: Path) -> None:
    accelerator = Accelerator(cpu=True)
    check_loss_finite(torch.tensor(True), 5, 2, tmp_path, accelerator)
    with pytest.raises(NonFiniteLossError, match="by step 5 \\(after step 3 was finite\\)"):
        check_loss_finite(torch.tensor(False), 5, 2, tmp_path, accelerator)
