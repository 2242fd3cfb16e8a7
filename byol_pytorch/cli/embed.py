"""``byol-pytorch embed``: write the representation of every image of a source (folder, shards, Hugging Face data)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import torch

from ..checkpoint import atomic_save, atomic_write
from ..devices import set_cpu_threads
from ..export import save_safetensors
from .common import PROG, CLIError, pick_device
from .datasets import Unlabelled, source_images
from .runs import load_trained, read_run
from .scoring import features_of
from .sources import item_names, unreadable_items

# What ``embed --out`` writes, by suffix.
EMBEDDING_FORMATS = (".npy", ".pt", ".safetensors", ".parquet")


def write_parquet(path: Path, features: torch.Tensor, files: list[str]) -> None:
    """One row per image: ``path`` (string) and ``embedding`` (fixed-size list of float32), written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    width = features.shape[1]
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(features.float().numpy().reshape(-1)), width)
    table = pa.table({"path": pa.array(files, type=pa.string()), "embedding": vectors})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data = sink.getvalue().to_pybytes()
    atomic_write(path, lambda handle: handle.write(data))


def cmd_embed(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.is_dir():
        raise CLIError(f"--out {out} is a folder; name a file in it, such as {out / 'embeddings.npy'}")
    if out.suffix.lower() not in EMBEDDING_FORMATS:
        raise CLIError(f"--out {args.out}: the file name must end in {', '.join(EMBEDDING_FORMATS[:-1])} or "
                       f"{EMBEDDING_FORMATS[-1]}")
    if out.suffix.lower() == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise CLIError(f"--out {args.out}: writing parquet needs pyarrow, which is not installed: pip install pyarrow")
    run_dir, spec, state = read_run(args.checkpoint)
    _check_out(out, run_dir, args.overwrite)
    device = pick_device(args.device)
    if device.type == "cpu":
        set_cpu_threads(args.threads)
    images = source_images(args.data, int(spec["image_size"]), "--data", labelled=False, on_unreadable="return_none",
                           image_key=args.image_key)
    net = load_trained(spec, state, run_dir)
    # One row per readable image: an unreadable one gives no row, so the listing leaves it out too.
    features, _ = features_of(net, spec["hidden_layer"], Unlabelled(images), device, batch_size=args.batch_size,
                              desc="embedding", progress=args.progress)
    skipped = unreadable_items(images)
    files = [name for i, name in enumerate(item_names(images)) if i not in skipped]
    if skipped:
        print(f"{PROG}: warning: {len(skipped)} unreadable image(s) left out", file=sys.stderr)
    listing = _write_embeddings(out, features, files)
    print(f"wrote {features.shape[0]} embeddings of width {features.shape[1]} to {out}{listing}")
    return 0


def _check_out(out: Path, run_dir: Path, overwrite: bool) -> None:
    """Refuses, before anything is computed, an existing ``--out`` unless ``overwrite``, and a missing folder."""
    if out.exists() and out.resolve().parent == run_dir.resolve():
        raise CLIError(f"--out {out} would overwrite a file of the run folder; write the embeddings elsewhere")
    if out.exists() and not overwrite:
        raise CLIError(f"--out {out} already exists; pass --overwrite to replace it, or choose another name")
    if not out.parent.is_dir():
        raise CLIError(f"--out {out}: folder {out.parent} does not exist")


def _write_embeddings(out: Path, features: torch.Tensor, files: list[str]) -> str:
    """Writes ``features`` and the image paths in the format of ``out``'s suffix; returns the extra file, if any."""
    import numpy as np

    suffix = out.suffix.lower()
    if suffix == ".npy":
        # A handle, not a path: np.save(path) would append .npy to a name ending in .NPY.
        atomic_write(out, lambda handle: np.save(handle, features.numpy()))
        listing_path = Path(str(out) + ".files.txt")
        atomic_write(listing_path, lambda handle: handle.write("".join(f + "\n" for f in files).encode("utf-8")))
        return f" and {listing_path}"
    if suffix == ".safetensors":
        # The paths travel in the header's metadata (string to string): one JSON list.
        save_safetensors({"embeddings": features}, out, metadata={"files": json.dumps(files)})
    elif suffix == ".parquet":
        write_parquet(out, features, files)
    else:
        atomic_save({"embeddings": features, "files": files}, out)
    return ""
