"""State that crosses processes: batch norm made synchronous, random generators, bytes from the main process."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn


def convert_sync_batchnorm(module: nn.Module) -> Callable[[], None]:
    """Swaps every batch norm inside ``module`` for a SyncBatchNorm sharing its tensors.

    Returns a function that puts the original modules back (they share the
    parameters and running statistics, so they carry the training with them):
    the user's network ends training with its own module types.
    """
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    # A learner's encoders run the network through a traced graph outside the module tree, whose
    # containers hold the batch norms too: they are swapped there as well.
    graphs = [m.hidden_encoder for m in module.modules() if isinstance(getattr(m, "hidden_encoder", None), nn.Module)]
    parents = list(module.modules()) + [m for graph in graphs for m in graph.modules()]
    for parent in dict.fromkeys(parents):
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


def average_buffers(accelerator: Any, module: nn.Module) -> None:
    """Replaces every floating-point buffer of ``module`` by its mean over processes (a collective)."""
    if accelerator.num_processes == 1:
        return
    with torch.no_grad():
        for buffer in module.buffers():
            if buffer.is_floating_point():
                buffer.copy_(accelerator.reduce(buffer.clone(), "mean"))


def broadcast_state(module: nn.Module, device: torch.device) -> None:
    """Gives every process the main process's ``module`` state, every tensor of it (a collective).

    Tensors travel through ``device`` (NCCL sends device tensors) and stay where they are.
    """
    import torch.distributed as dist

    with torch.no_grad():
        for tensor in module.state_dict().values():
            shared = tensor.to(device)
            dist.broadcast(shared, src=0)
            tensor.copy_(shared)


def capture_rng_state() -> dict[str, Any]:
    """Every random generator's state, as tensors and plain values (loadable with weights_only)."""
    numpy_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        # The uint32 keys as int64: torch.save pickles no uint32 tensor before torch 2.6.
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
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
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def gather_rng_states(accelerator: Any) -> list[dict[str, Any]]:
    """:func:`capture_rng_state` of every process, in process order (a collective: all processes call it)."""
    return gather_objects(accelerator, capture_rng_state())


def gather_objects(accelerator: Any, obj: Any) -> list[Any]:
    """Every process's ``obj`` (tensors and plain containers), in process order (a collective).

    The objects travel as serialised bytes in one tensor gather (object
    gathering pickles storages, which fails across processes here).
    """
    if accelerator.num_processes == 1:
        return [obj]
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8).to(accelerator.device)
    lengths = accelerator.gather(torch.tensor([data.numel()], device=accelerator.device)).tolist()
    padded = torch.zeros(max(lengths), dtype=torch.uint8, device=accelerator.device)
    padded[: data.numel()] = data
    rows = accelerator.gather(padded[None]).cpu()
    return [torch.load(io.BytesIO(rows[i, :n].numpy().tobytes()), weights_only=True) for i, n in enumerate(lengths)]


def broadcast_bytes(accelerator: Any, data: bytes | None) -> bytes:
    """The main process's ``data`` on every process (a collective: all processes call it).

    Other processes pass ``None``. The bytes travel in two tensor broadcasts (the
    length, then the bytes), which work across machines that share no filesystem.
    """
    from accelerate.utils import broadcast

    if accelerator.num_processes == 1:
        assert data is not None, "the only process is the main one and must give the bytes"
        return data
    device = accelerator.device
    mine = data if accelerator.is_main_process and data is not None else b""
    length = broadcast(torch.tensor([len(mine)], dtype=torch.int64, device=device)).item()
    buffer = torch.zeros(int(length), dtype=torch.uint8, device=device)
    if accelerator.is_main_process and length:
        buffer.copy_(torch.frombuffer(bytearray(mine), dtype=torch.uint8))
    if length:
        buffer = broadcast(buffer)
    return buffer.cpu().numpy().tobytes()


def main_process_verdict(accelerator: Any, verdict: bool) -> bool:
    """The main process's ``verdict`` on every process (a collective: all processes call it at the same step)."""
    if accelerator.num_processes == 1:
        return verdict
    from accelerate.utils import broadcast

    return bool(broadcast(torch.tensor([int(verdict)], device=accelerator.device)).item())
