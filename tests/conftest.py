"""Tiny networks and helpers shared by the tests."""

from __future__ import annotations

import io
import os
import socket
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from byol_pytorch import MockDataset


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, one compute thread a worker: two workers with torch's default thread count
    each would make OpenMP's threads wait on one another, and the processes the tests start inherit it."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


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


def write_digit_folder(root: Path) -> tuple[list[Path], list[Path]]:
    """Scikit-learn's digits as PNG and JPEG files in two class folders, with three broken files among them.

    Returns:
        ``(readable, broken)`` paths. No two broken files are neighbours in
        sorted order, so each is met by exactly one worker per epoch.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    readable: list[Path] = []
    for i in range(12):
        folder = root / str(digits.target[i] % 2)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (digits.images[i] * (255 / 16)).astype(np.uint8)
        image = Image.fromarray(pixels).resize((16, 16), Image.NEAREST).convert("RGB")
        path = folder / f"{i:02d}.{'jpg' if i % 3 == 0 else 'png'}"
        image.save(path)
        readable.append(path)
    buffer = io.BytesIO()
    Image.fromarray((digits.images[20] * 15).astype(np.uint8)).resize((64, 64)).save(buffer, format="JPEG")
    broken = [root / "0" / "04b_truncated.jpg", root / "1" / "03b_empty.jpg", root / "1" / "07b_text.jpg"]
    broken[0].write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    broken[1].write_bytes(b"")
    broken[2].write_text("these are notes, not a JPEG\n")
    return readable, broken


def reset_accelerate_state() -> None:
    """A new Accelerator state, as a fresh process has (accelerate keeps one per process)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture
def fresh_accelerate_state():
    """A new Accelerator state before and after the test; yields the function that resets it in between.

    Building a trainer also sets torch's thread count; it is put back.
    """
    threads = torch.get_num_threads()
    reset_accelerate_state()
    yield reset_accelerate_state
    reset_accelerate_state()
    torch.set_num_threads(threads)


def free_port() -> int:
    """A TCP port nobody listens on now, for a launch's rendezvous (tests may run side by side)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OneProcessAccelerator:
    """What the callbacks read of an ``Accelerator`` on one CPU process, recording what is logged to trackers."""

    num_processes, process_index, is_main_process = 1, 0, True
    device = torch.device("cpu")
    scaler = None

    def __init__(self) -> None:
        self.logged: list[tuple[int, dict]] = []
        self.printed: list[str] = []

    def reduce(self, tensor: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return tensor

    def print(self, *values: object) -> None:
        self.printed.append(" ".join(str(v) for v in values))

    def init_trackers(self, project_name: str, config: dict) -> None:
        self.tracked = (project_name, config)

    def log(self, values: dict, step: int) -> None:
        self.logged.append((step, values))


class BreaksAfter(MockDataset):
    """A ``MockDataset(16, length)`` whose reads after the first ``items`` raise KeyboardInterrupt (a killed
    run) or, with ``nan``, give images of NaN."""

    def __init__(self, items: int, nan: bool = False, length: int = 32) -> None:
        super().__init__(16, length)
        # -1: the trainer reads item 0 once when it is built, to check that it holds an image.
        self.items, self.nan, self.read = items, nan, -1

    def __getitem__(self, index: int) -> torch.Tensor:
        self.read += 1
        if self.read > self.items and not self.nan:
            raise KeyboardInterrupt
        image = super().__getitem__(index)
        return image if self.read <= self.items else torch.full_like(image, float("nan"))
