"""What this machine offers a run: cores, loader workers, CPU threads and mixed precision."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_num_workers(device_type: str, processes_per_machine: int = 1, cores: int | None = None) -> int:
    """DataLoader workers per process that feed the device without taking its cores.

    The rule: share the cores among the processes of this machine; on a GPU
    keep one core per process for the training loop and give the rest to
    workers (at most 16); on a CPU the compute threads need the cores, so a
    quarter of them decode (none below 4 cores, where a worker would compete
    with the step it feeds).

    Args:
        device_type: ``"cuda"``, ``"cpu"``, ...
        processes_per_machine: training processes sharing this machine's cores.
        cores: the cores to share; default :func:`usable_cores`.
    """
    share = max(1, (cores if cores is not None else usable_cores()) // max(1, processes_per_machine))
    if device_type == "cpu":
        return share // 4
    return min(16, max(1, share - 1))


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# The first GPUs with bf16 tensor cores (Ampere, compute capability 8.0); older ones (V100, T4) emulate it, slowly.
NATIVE_BF16_CAPABILITY = (8, 0)


def cuda_computes_bf16() -> bool:
    """Whether the current CUDA device computes bf16 natively (emulation does not count).

    ``torch.cuda.is_bf16_supported()`` also answers yes for GPUs that only
    emulate bf16; torch 2.4 and later can be asked to leave emulation out
    (``including_emulation=False``); before that, compute capability 8.0 or
    later is the test.
    """
    if not torch.cuda.is_available():
        return False
    supported = torch.cuda.is_bf16_supported
    if "including_emulation" in inspect.signature(supported).parameters:
        return bool(supported(including_emulation=False))
    return tuple(torch.cuda.get_device_capability()) >= NATIVE_BF16_CAPABILITY


def resolve_mixed_precision(choice: str, device_type: str) -> str:
    """``"auto"`` becomes ``"bf16"`` where the device computes in bf16 natively, else ``"no"``."""
    if choice != "auto":
        return choice
    if device_type == "cuda":
        return "bf16" if cuda_computes_bf16() else "no"
    if device_type == "cpu":
        return "bf16" if cpu_supports_bf16() else "no"
    return "no"


def set_cpu_threads(requested: int | None = None) -> int:
    """Sets torch's CPU threads to ``requested`` (``None`` keeps torch's own choice); returns the count in use.

    Left to the caller on purpose rather than timed and chosen: float sums
    are ordered by thread, so the thread count is part of what makes a seeded
    run reproducible (the built-in demo's kNN accuracy moved by a point
    between 1 and 2 threads). On cores other processes keep busy, one thread
    can be several times faster than torch's default; pass it then.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"threads must be a positive integer, got {requested!r}")
        torch.set_num_threads(requested)
    return torch.get_num_threads()
