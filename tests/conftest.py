"""Tiny networks and helpers shared by the tests."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn


def tiny_cnn(channels: int = 3, width: int = 8, classes: int = 10) -> nn.Sequential:
    """conv -> bn -> relu -> pool -> flatten -> fc; hidden_layer=-2 is 'flatten'."""
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(channels, width, 3, padding=1),
            bn=nn.BatchNorm2d(width),
            relu=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            fc=nn.Linear(width, classes),
        )
    )


def state_copy(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if isinstance(v, torch.Tensor)}


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(6, 3, 16, 16)
