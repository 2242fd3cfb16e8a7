"""What every command shares: the error type, argument parsers, devices, JSON files."""

from __future__ import annotations

import argparse
import json
import typing
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import atomic_write

PROG = "byol-pytorch"
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 4096


class CLIError(Exception):
    """Bad input: reported as one line on stderr with exit status 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, raised rather than exiting."""

    def error(self, message: str) -> typing.NoReturn:  # type: ignore[override]
        raise CLIError(f"{message} (see '{self.prog} --help')")


def first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


def image_size_arg(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of pixels from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}, got {text!r}") from None
    if not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        raise argparse.ArgumentTypeError(
            f"must be from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} pixels, got {size}")
    return size


def positive_int_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value



def pick_device(name: str | None) -> torch.device:
    if name:
        try:
            device = torch.device(name)
        except RuntimeError as err:
            raise CLIError(f"--device {name}: {first_line(err)}") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise CLIError(f"--device {name}: no CUDA GPU is available; use --device cpu")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Writes ``data`` to ``path`` atomically (a temporary file, then a rename)."""
    text = json.dumps(data, indent=2) + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
