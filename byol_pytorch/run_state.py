"""A run's state: what a checkpoint holds, which checkpoint a run resumes from, and what changed since.

The checkpoint of step ``k`` holds everything a run needs to go on as if it
had not stopped: the learner (online, target, heads, EMA step), the optimiser
and its schedule, the mixed-precision scaler, the online probe, every
process's random generators, and the place in the data as the number of
images all processes have consumed (see :mod:`byol_pytorch.data.pipeline`).

Resuming with the same processes and batch size continues bit for bit. With
another number of processes or batch size, the run continues from the same
image of the same epoch (no image of it skipped or read twice), the learning
rate follows this run's options (LARS scales it with the new global batch),
and every process draws fresh random states; :func:`resume_changes` says so in
one warning.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import set_seed

from .checkpoint import atomic_save, checkpoint_name, list_checkpoints, prune_checkpoints, safe_load
from .config import BYOL_CONFIG_FIELDS
from .distributed import average_buffers, broadcast_bytes, gather_objects, gather_rng_states, restore_rng_state
from .errors import CheckpointError
from .export import save_network
from .health import check_state_finite
from .model.layout import tensor_name

CHECKPOINT_FORMAT = 3
# The options whose change on resume changes the training beyond the layout's (which has its own words).
CHANGES_TRAINING = (*(name for name in BYOL_CONFIG_FIELDS if name != "channels_last"), "ema_schedule", "optimizer",
                    "weight_decay", "lr_schedule", "warmup_steps", "max_grad_norm", "mixed_precision", "loader_crops")

__all__ = ["CHECKPOINT_FORMAT", "RunLayout", "checkpoint_contents", "find_resume_point", "load_contents",
           "resume_changes", "restore_process_state", "start_position", "write_checkpoint"]


@dataclass(frozen=True)
class RunLayout:
    """How a run spreads its steps: what may change between a run and its resumption.

    Attributes:
        processes: training processes.
        batch_size: images per batch and process.
        accumulation: batches per optimiser step.
        learning_rate: the base rate the optimiser was built with (LARS: scaled to the global batch).
        num_train_steps: the steps the schedules span.
    """

    processes: int
    batch_size: int
    accumulation: int
    learning_rate: float
    num_train_steps: int

    @property
    def global_batch(self) -> int:
        """Images per optimiser step, all processes and accumulated batches together."""
        return self.processes * self.batch_size * self.accumulation


def checkpoint_contents(*, step: int, images_seen: int, learner: torch.nn.Module, optimizer: Any, scheduler: Any,
                        scaler: Any, probe: dict[str, Any] | None, config: dict[str, Any],
                        rng: list[dict[str, Any]], layout: RunLayout,
                        buffers: list[dict[str, Any]] | None = None,
                        streams: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The checkpoint of ``step``: tensors and plain containers only (it loads with ``weights_only=True``).

    ``buffers``: each process's own floating-point buffers of the learner (a
    checkpoint made on a stop request; ``learner`` holds their average).
    ``streams``: each process's stream positions, when training reads a stream.
    """
    state = {
        "format": CHECKPOINT_FORMAT, "step": step, "images_seen": images_seen,
        "learner": learner.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "rng": rng[0], "rng_per_process": rng, "layout": asdict(layout),
        "config": {k: v for k, v in config.items() if _plain(v)},
    }
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    if probe is not None:
        state["probe"] = probe
    if buffers is not None:
        state["buffers_per_process"] = buffers
    if streams is not None:
        state["streams"] = streams
    return state


def _plain(value: Any) -> bool:
    """A value a checkpoint keeps of the config: a number, a string, ``None`` or a tuple of numbers."""
    if isinstance(value, tuple):
        return all(isinstance(v, (int, float)) for v in value)
    return value is None or isinstance(value, (int, float, str, bool))


def write_checkpoint(accelerator: Any, *, net: torch.nn.Module, learner: torch.nn.Module, optimizer: Any, step: int,
                     output_dir: Path, keep: int, contents: Callable[[list[dict[str, Any]], list[dict] | None], dict],
                     stopping: bool) -> Path | None:
    """Writes the checkpoint of ``step``, ``net.pt`` and ``net.safetensors``; returns the path (main process).

    A collective: every process averages its batch-norm statistics into the
    saved state, checks that every tensor is finite and sends its random
    state; the main process writes (atomically) and keeps the newest ``keep``.
    When ``stopping``, each process's own statistics go in too (see
    :func:`checkpoint_contents`): an uninterrupted run averages them only at its
    checkpoints, so a run resumed from a stop in between puts each process's
    back and goes on exactly as if it had not stopped.

    Args:
        contents: builds the checkpoint from the gathered random states and statistics.

    Raises:
        NonFiniteStateError: a tensor of the state is not finite; nothing is written.
        DiskFullError: the disk filled up; what was saved before is intact.
    """
    own = None
    if stopping and accelerator.num_processes > 1:
        own = {k: b.detach().cpu().clone() for k, b in learner.named_buffers() if b.is_floating_point()}
    average_buffers(accelerator, learner)
    check_state_finite(net, learner, optimizer, step, output_dir, accelerator)
    rng = gather_rng_states(accelerator)
    buffers = gather_objects(accelerator, own) if own is not None else None
    if not accelerator.is_main_process:
        return None
    path = atomic_save(contents(rng, buffers), output_dir / checkpoint_name(step))
    save_network(net.state_dict(), output_dir)
    prune_checkpoints(output_dir, keep)
    return path


def load_contents(state: dict[str, Any], *, learner: torch.nn.Module, optimizer: Any, scheduler: Any,
                  scaler: Any) -> None:
    """Puts learner, optimiser, schedule and scaler where ``state`` left them.

    The schedule keeps its place (the step) but takes this run's base rates and
    shape, which the caller built from its options: the same options give the
    saved rate exactly; changed ones (``num_train_steps``, ``learning_rate``,
    LARS's batch scaling) take effect from this step on.
    """
    fresh = list(scheduler.base_lrs)
    learner.load_state_dict(state["learner"])
    optimizer.load_state_dict(state["optimizer"])
    if "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    else:  # format 1: the schedule is a function of the step
        scheduler.last_epoch = int(state["step"])
    scheduler.base_lrs = fresh
    for group, base, factor in zip(optimizer.param_groups, fresh, scheduler.lr_lambdas):
        group["initial_lr"] = base
        group["lr"] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
    if "scaler" in state and scaler is not None:
        scaler.load_state_dict(state["scaler"])


def start_position(state: dict[str, Any], dataset_length: int | None) -> int:
    """The images all processes had consumed at the checkpoint (format 2 kept the epoch and a batch count)."""
    if "images_seen" in state:
        return int(state["images_seen"])
    saved = saved_layout(state)
    batches = int(state.get("batch_in_epoch", 0)) * (saved.processes * saved.batch_size if saved else 0)
    return int(state.get("epoch", 0)) * (dataset_length or 0) + batches


def saved_layout(state: dict[str, Any]) -> RunLayout | None:
    """The layout of the run that wrote ``state`` (older formats: from its options and random states)."""
    if "layout" in state:
        return RunLayout(**state["layout"])
    config = state.get("config", {})
    if "batch_size" not in config:
        return None
    processes = len(state.get("rng_per_process") or [state.get("rng")])
    return RunLayout(processes, int(config["batch_size"]), int(config.get("gradient_accumulation_steps", 1)),
                     float("nan"), int(config.get("num_train_steps", 0)))


def option_changes(saved: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """``name value instead of saved`` for each option of :data:`CHANGES_TRAINING` that ``config`` sets otherwise."""
    changes = []
    for name in CHANGES_TRAINING:
        if name in saved and name in config:
            before, now = saved[name], config[name]
            if (tuple(before) if isinstance(before, list) else before) != now:
                changes.append(f"{name} {now!r} instead of {before!r}")
    return changes


def resume_changes(state: dict[str, Any], layout: RunLayout, optimizer_name: str,
                   config: dict[str, Any] | None = None) -> str | None:
    """One sentence on what this run does differently from the one that wrote ``state``, or ``None``.

    Args:
        config: this run's options, compared with the saved ones (see :func:`option_changes`).
    """
    saved = saved_layout(state)
    if saved is None:
        return None
    step = int(state["step"])
    changes = option_changes(state.get("config", {}), config or {})
    if saved.processes != layout.processes:
        changes.append(f"{layout.processes} process(es) instead of {saved.processes}")
    if saved.global_batch != layout.global_batch:
        changes.append(f"a global batch of {layout.global_batch} images instead of {saved.global_batch}")
    if not math.isnan(saved.learning_rate) and saved.learning_rate != layout.learning_rate:
        why = " (LARS scales it with the global batch)" if optimizer_name == "lars" else ""
        changes.append(f"a base learning rate of {layout.learning_rate:.4g} instead of {saved.learning_rate:.4g}{why}")
    if saved.num_train_steps and saved.num_train_steps != layout.num_train_steps:
        changes.append(f"num_train_steps {layout.num_train_steps} instead of {saved.num_train_steps}: the learning "
                       f"rate and tau schedules now run to step {layout.num_train_steps}, from step {step}")
    if not changes:
        return None
    sentence = f"resuming step {step} with " + "; ".join(changes)
    if saved.processes != layout.processes:
        sentence += ("; each process draws new random states (seeded from seed, step and process), so the "
                     "augmentations differ from an uninterrupted run")
    if saved.global_batch != layout.global_batch or saved.processes != layout.processes:
        sentence += ("; the data go on from the same image of the same epoch, each of its remaining images "
                     "read once")
    return sentence


def restore_process_state(state: dict[str, Any], learner: torch.nn.Module, process_index: int,
                          num_processes: int, seed: int) -> None:
    """This process's own part of ``state``: its random generators and, if kept, its batch-norm statistics.

    With another process count the generators are seeded afresh (from seed,
    step and process) and every process keeps the averaged statistics.
    """
    per_process = state.get("rng_per_process") or [state["rng"]]
    if len(per_process) != num_processes:
        set_seed(seed + int(state["step"]), device_specific=True)
        return
    restore_rng_state(per_process[process_index])
    buffers = state.get("buffers_per_process")
    if buffers is not None and len(buffers) == num_processes:
        own = {tensor_name(name): value for name, value in buffers[process_index].items()}  # 1.0.0's names too
        with torch.no_grad():
            for name, buffer in learner.named_buffers():
                if name in own:
                    buffer.copy_(own[name])


def _newest_intact(folder: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint in ``folder`` that loads, and a note for each corrupt newer one."""
    skipped = []
    for path in reversed(list_checkpoints(folder)):
        try:
            safe_load(path, map_location="meta")
        except CheckpointError as err:
            skipped.append(f"skipping {path}: {str(err).split(';')[0]}")
            continue
        return path, skipped
    return None, skipped


def _resume_path(resume: bool | str, output_dir: Path) -> tuple[Path | None, list[str]]:
    if resume is True or resume == "latest":
        return _newest_intact(output_dir)
    path = Path(str(resume))
    if path.is_dir():
        if not list_checkpoints(path):
            raise FileNotFoundError(f"no checkpoint-*.pt in {path} to resume from")
        return _newest_intact(path)
    if not path.is_file():
        raise FileNotFoundError(f"resume checkpoint {path} does not exist")
    return path, []


def find_resume_point(accelerator: Any, resume: bool | str, output_dir: Path) -> tuple[Path | None, dict | None,
                                                                                         list[str]]:
    """The checkpoint to resume from, its contents and notes on skipped files, the same on every process.

    The main process alone looks at the run folder and decides; the file's
    bytes are then broadcast, so machines that do not share its filesystem
    resume from the same step with the same state (every process's random
    state included) instead of starting over.

    Raises:
        FileNotFoundError: the checkpoint asked for does not exist (on every process).
        CheckpointError: the checkpoint asked for is corrupt (on every process).
    """
    if not resume:
        return None, None, []
    decision: dict[str, Any] = {}
    data = None
    if accelerator.is_main_process:
        try:
            path, notes = _resume_path(resume, output_dir)
        except FileNotFoundError as err:
            decision = {"error": "FileNotFoundError", "message": str(err)}
        except CheckpointError as err:
            decision = {"error": "CheckpointError", "message": str(err), "path": str(err.path)}
        else:
            decision = {"path": None if path is None else str(path), "notes": notes}
            if path is not None and accelerator.num_processes > 1:
                data = path.read_bytes()
    if accelerator.num_processes > 1:
        decision = json.loads(broadcast_bytes(accelerator, json.dumps(decision).encode()))
    if decision.get("error") == "FileNotFoundError":
        raise FileNotFoundError(decision["message"])
    if decision.get("error") == "CheckpointError":
        raise CheckpointError(decision["message"], decision["path"])
    if decision["path"] is None:
        return None, None, decision["notes"]
    path = Path(decision["path"])
    if accelerator.num_processes == 1:
        return path, safe_load(path), decision["notes"]
    # Every process, the main one included, loads the very bytes that were sent.
    data = broadcast_bytes(accelerator, data)
    return path, torch.load(io.BytesIO(data), map_location="cpu", weights_only=True), decision["notes"]
