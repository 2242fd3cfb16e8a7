"""Run folders: where a run is written, its description ``run.json``, and loading it back."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..export import load_network_state, run_files
from .common import PROG, CLIError, first_line
from .networks import (
    DEFAULT_FOLDER_IMAGE_SIZE,
    DEFAULT_IMAGE_SIZE,
    DEFAULT_MODEL,
    apply_small_image_stem,
    build_model,
    default_hidden_layer,
    model_source,
    resolve_small_stem,
)

RUN_FORMAT = 1


def read_run(checkpoint: str) -> tuple[Path, dict[str, Any], dict[str, torch.Tensor]]:
    """The run folder, its ``run.json`` and the network's weights.

    ``--checkpoint`` names the run folder (its ``net.pt``, else its
    ``net.safetensors``, is read) or either file of it.
    """
    try:
        run_dir, weights = run_files(Path(checkpoint))
    except FileNotFoundError as err:
        raise CLIError(f"--checkpoint: {err}") from err
    try:
        spec = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        spec["model"], spec["image_size"]
    except (ValueError, KeyError, TypeError) as err:
        raise CLIError(f"{run_dir / 'run.json'} is not a valid run description ({first_line(err)})") from err
    try:
        return run_dir, spec, load_network_state(weights)
    except ValueError as err:
        raise CLIError(f"--checkpoint {checkpoint}: {first_line(err)}") from err


def load_trained(spec: dict[str, Any], state: dict[str, torch.Tensor], where: Path) -> nn.Module:
    """The network of ``run.json`` with the weights of ``net.pt``."""
    if isinstance(state, dict) and "learner" in state and "optimizer" in state:
        raise CLIError(f"--checkpoint names a full training checkpoint; pass the run folder {where}, "
                       "whose net.pt holds the network alone")
    net = build_model(spec)
    mismatch = state_dict_mismatch(net.state_dict(), state)
    if mismatch:
        raise CLIError(f"{where}: the saved network does not fit the {spec['model']} of run.json: {mismatch}")
    net.load_state_dict(state)
    return net


def state_dict_mismatch(expected: dict[str, Any], saved: dict[str, Any], shown: int = 3) -> str:
    """What keeps ``saved`` from loading where ``expected`` is: the first missing and unexpected keys and
    the first shape that differs ('' when it fits)."""
    def listed(keys: list[str]) -> str:
        more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
        return ", ".join(keys[:shown]) + more

    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    parts = []
    if missing:
        parts.append(f"missing keys {listed(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {listed(unexpected)}")
    for key, tensor in expected.items():
        other = saved.get(key)
        if isinstance(other, torch.Tensor) and other.shape != tensor.shape:
            parts.append(f"{key} is {tuple(other.shape)} in the file and {tuple(tensor.shape)} in the model")
            break
    return "; ".join(parts)


def default_run_dir() -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path("runs") / f"byol-{stamp}"
    n = 2
    while path.exists():
        path = Path("runs") / f"byol-{stamp}-{n}"
        n += 1
    return path


def process_state() -> Any:
    """Accelerate's view of this process (rank, count, device), made as the trainer's Accelerator makes it.

    ``Accelerator`` treats ``ACCELERATE_USE_CPU`` (set by ``accelerate launch
    --cpu``) as ``cpu=True``; a bare ``PartialState()`` would not, and would then
    see one process where the trainer sees several.
    """
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def shared_value(value: Any) -> Any:
    """The main process's ``value`` on every process (identity when there is one)."""
    if process_state().num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value])[0]


def resolve_run_dir(args: argparse.Namespace) -> Path:
    resume = args.resume
    if args.output_dir is not None:
        return Path(args.output_dir)
    if isinstance(resume, str):
        found = Path(resume)
        return found.parent if found.is_file() else found
    if resume:
        raise CLIError("--resume needs the run folder: pass --out RUN_DIR (or --resume RUN_DIR)")
    return Path(shared_value(str(default_run_dir())))


def check_run_dir(run_dir: Path, resume: Any) -> dict[str, Any] | None:
    """Refuses to reuse a non-empty folder without --resume; returns its run.json when resuming."""
    if run_dir.exists() and not run_dir.is_dir():
        raise CLIError(f"--out {run_dir} is a file; choose a folder name for the run")
    used = run_dir.is_dir() and any(run_dir.iterdir())
    if used and not resume:
        raise CLIError(f"run folder {run_dir} already exists; pass --resume to continue it or choose another --out")
    spec_path = run_dir / "run.json"
    if resume and spec_path.is_file():
        try:
            return json.loads(spec_path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise CLIError(f"{spec_path} is not valid JSON ({first_line(err)})") from err
    return None


def check_run_dir_on_main(run_dir: Path, resume: Any) -> dict[str, Any] | None:
    """:func:`check_run_dir` as the main process sees the folder, its verdict on every process.

    Only the main process writes the run folder; on machines that share no
    filesystem with it the folder may be missing or stale, so theirs is not
    asked. Every process raises the main process's error, or resumes the run
    description it read.
    """
    state = process_state()
    if state.num_processes == 1:
        return check_run_dir(run_dir, resume)
    verdict: dict[str, Any] = {}
    if state.is_main_process:
        try:
            verdict = {"previous": check_run_dir(run_dir, resume)}
        except CLIError as err:
            verdict = {"error": str(err)}
    verdict = shared_value(verdict)
    if "error" in verdict:
        raise CLIError(verdict["error"])
    return verdict["previous"]


def run_spec(args: argparse.Namespace, previous: dict[str, Any] | None,
              device_type: str) -> tuple[dict[str, Any], nn.Module]:
    """The run description and its freshly initialised network.

    Model, image size, stem and hidden layer come from the flags, else from the
    run being resumed, else from the defaults (resnet18; 16 px on the digits, 224 on a folder; auto; auto).
    """
    chosen = {"model": args.model, "image_size": args.image_size, "small_image_stem": args.small_image_stem,
              "hidden_layer": args.hidden_layer, "augment": None if args.augment == "auto" else args.augment}
    if previous:
        for key, value in chosen.items():
            if value is not None and key in previous and previous[key] != value:
                raise CLIError(f"--{key.replace('_', '-')} {value} differs from the run being resumed "
                               f"({previous[key]}); drop the flag or start a new run")
        chosen = {key: value if value is not None else previous.get(key) for key, value in chosen.items()}
    name = chosen["model"] or DEFAULT_MODEL
    digits = args.data is None
    size = chosen["image_size"] or (DEFAULT_IMAGE_SIZE if digits else DEFAULT_FOLDER_IMAGE_SIZE)
    classes = 10 if digits else 1000
    augment = chosen["augment"] or ("digits" if digits else "paper")
    spec = {
        "format": RUN_FORMAT, "model": name, "source": model_source(name), "image_size": size,
        "small_image_stem": False, "channels": 3, "augment": augment,
        "num_classes": int(previous.get("num_classes", classes)) if previous else classes,
        "seed": int(previous.get("seed", args.seed)) if previous else args.seed,
        "data": args.data, "eval_data": args.eval_data,
    }
    net = build_model(spec)
    # Deciding on the stem after building is the same as build_model with the stem:
    # seed, build, then draw the new conv1.
    spec["small_image_stem"] = resolve_small_stem(chosen["small_image_stem"], net, size, device_type)
    if spec["small_image_stem"]:
        apply_small_image_stem(net)
    layer = chosen["hidden_layer"]
    spec["hidden_layer"] = layer if layer is not None else default_hidden_layer(name, net)
    return spec, net
