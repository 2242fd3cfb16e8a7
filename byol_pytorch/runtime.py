"""Device facts and process state: precision, CPU threads, batch norm sync, RNG."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_mixed_precision(choice: str, device_type: str) -> str:
    """``"auto"`` becomes ``"bf16"`` where the device computes in bf16 natively, else ``"no"``."""
    if choice != "auto":
        return choice
    if device_type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    if device_type == "cpu":
        return "bf16" if cpu_supports_bf16() else "no"
    return "no"


def convert_sync_batchnorm(module: nn.Module) -> Callable[[], None]:
    """Swaps every batch norm inside ``module`` for a SyncBatchNorm sharing its tensors.

    Returns a function that puts the original modules back (they share the
    parameters and running statistics, so they carry the training with them):
    the user's network ends training with its own module types.
    """
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, nn.SyncBatchNorm):
                sync = nn.SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                        child.track_running_stats)
                if child.affine:
                    sync.weight, sync.bias = child.weight, child.bias
                sync.running_mean, sync.running_var = child.running_mean, child.running_var
                sync.num_batches_tracked = child.num_batches_tracked
                sync.training = child.training
                setattr(parent, name, sync)
                swapped.append((parent, name, child))

    def restore() -> None:
        for parent, name, original in reversed(swapped):
            original.training = getattr(parent, name).training
            setattr(parent, name, original)

    return restore


def capture_rng_state() -> dict[str, Any]:
    """Every random generator's state, as tensors and plain values (loadable with weights_only)."""
    numpy_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].copy()), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _time_ops(threads: int) -> float:
    """Seconds for a small convolutional forward/backward plus many tiny ops, at ``threads``."""
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    weight1 = torch.randn(32, 16, 3, 3, generator=generator, requires_grad=True)
    weight2 = torch.randn(32, 32, 3, 3, generator=generator, requires_grad=True)
    x = torch.randn(32, 16, 16, 16, generator=generator)
    start = time.perf_counter()
    for _ in range(6):
        y = torch.nn.functional.conv2d(x, weight1, padding=1).relu()
        torch.nn.functional.conv2d(y, weight2, padding=1).mean().backward()
        z = x
        for _ in range(25):
            z = z.mul(1.0001).add(0.1)
    return time.perf_counter() - start


def choose_cpu_threads(requested: int | None = None) -> int:
    """Sets torch's CPU threads to ``requested``, or to the faster of the default and 1; returns the count.

    PyTorch's operations synchronise their threads after every operation. On
    cores that other processes keep busy, each synchronisation waits for the
    scheduler, and a BYOL step with its hundreds of small operations ran 4x
    slower on two threads than on one (2-core machine under load). So, unless
    ``OMP_NUM_THREADS`` or ``requested`` says otherwise, on machines of up to
    four cores a timing of both settings (well under a second when idle)
    decides. Only for single-process CPU runs; bigger machines keep torch's default.
    """
    if requested:
        torch.set_num_threads(requested)
        return requested
    default = torch.get_num_threads()
    if not 1 < default <= 4 or os.environ.get("OMP_NUM_THREADS") or torch.cuda.is_available() \
            or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return default
    _time_ops(1)  # warm-up: first calls allocate
    one = min(_time_ops(1), _time_ops(1))
    many = min(_time_ops(default), _time_ops(default))
    chosen = 1 if one < many else default
    torch.set_num_threads(chosen)
    return chosen
