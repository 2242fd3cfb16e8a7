"""Benchmark of the folder data path at 224 px: decode speed, bytes to the device, time the trainer waits.

It builds a folder of photo-sized JPEGs (half 500x375, half 1024x768),
re-encoded from the photographs bundled with scikit-image, and compares

* old: the former training path. Each file is decoded, its shorter side resized
  to 224 and the centre square cut out, sent as float32; both views are then
  cropped on the device from that square;
* new: ``LoaderCrops``. Both views' crops are drawn from the whole decoded photo
  in the loader (JPEG draft decoding), resized to 224 and sent as uint8; only
  the colour part runs on the device.

Figures: items/s of one worker (one process, one thread, no DataLoader: what one
worker core delivers), bytes per image of the batch that travels to the device,
and, for ResNet-18 at 224 px trained by ``BYOLTrainer`` on this machine, the
share of the loop spent waiting for batches and the step time against a bare
loop over the learner with the same settings.

Examples::

    python benchmarks/bench_data.py                          # 200 files, 4 timed trainer steps of 8
    python benchmarks/bench_data.py --skip-trainer           # decode figures only
    python benchmarks/bench_data.py --steps 6 --batch-size 16 --threads 2 --workers 1

Needs scikit-image (``pip install -e .[test]``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from byol_pytorch import BYOL, ImageFolderDataset, LoaderCrops
from byol_pytorch.data import collate_images, collate_views

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
          "camera", "coins", "moon", "clock", "brick", "grass", "gravel")
SIZES = ((500, 375), (1024, 768))


def load_average() -> str:
    """The 1-minute load average and the core count, to read next to every figure."""
    return f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


_SOURCES: list[Image.Image] = []


def _load_sources() -> None:
    import skimage.data

    _SOURCES[:] = [Image.fromarray(getattr(skimage.data, name)()).convert("RGB") for name in PHOTOS]


def _write_photo(job: tuple[int, tuple[int, int], tuple[int, int, int, int], str]) -> None:
    source, size, box, path = job
    _SOURCES[source].resize(size, Image.Resampling.BICUBIC, box=box).save(path, quality=90)


def build_folder(folder: Path, count: int, seed: int = 0, processes: int | None = None) -> Path:
    """``count`` JPEGs (quality 90) cut at random from scikit-image's photographs, alternating the two sizes.

    The windows are drawn here, in order, so the files do not depend on ``processes``
    (default: every core), which only share the resizing and encoding.
    """
    rng = np.random.default_rng(seed)
    _load_sources()
    folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i in range(count):
        source = _SOURCES[i % len(_SOURCES)]
        width, height = SIZES[i % len(SIZES)]
        # A random 4:3 window of at least half the source's width, so the files differ.
        crop_w = int(source.width * rng.uniform(0.5, 1.0))
        crop_h = min(source.height, int(crop_w * 3 / 4))
        crop_w = int(crop_h * 4 / 3)
        left = int(rng.integers(0, source.width - crop_w + 1))
        top = int(rng.integers(0, source.height - crop_h + 1))
        jobs.append((i % len(_SOURCES), (width, height), (left, top, left + crop_w, top + crop_h),
                     str(folder / f"{i:04d}.jpg")))
    if (processes or os.cpu_count() or 1) == 1 or count < 64:
        for job in jobs:
            _write_photo(job)
    else:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(processes) as pool:
            pool.map(_write_photo, jobs, chunksize=16)
    return folder


def old_dataset(folder: Path, size: int) -> ImageFolderDataset:
    """The former training path: shorter side to ``size``, centre crop, float32."""
    return ImageFolderDataset(folder, size, resize_ratio=1.0)


def new_dataset(folder: Path, size: int, seed: int = 0) -> ImageFolderDataset:
    learner_crop = BYOL(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.Flatten()), size, hidden_layer=-1,
                        projection_hidden_size=8).crop_spec
    return ImageFolderDataset(folder, size, views=LoaderCrops(learner_crop, seed=seed))


def items_per_second(dataset: ImageFolderDataset, passes: int) -> float:
    """Items of ``dataset`` served per second by this process (one thread), after a short warm-up."""
    for i in range(min(8, len(dataset))):
        dataset[i]
    start = time.perf_counter()
    for epoch in range(passes):
        if dataset.views is not None:
            dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            dataset[i]
    return passes * len(dataset) / (time.perf_counter() - start)


def bytes_per_image(dataset: ImageFolderDataset, batch: int = 8) -> int:
    items = [dataset[i] for i in range(batch)]
    collated = collate_views(items) if dataset.views is not None else collate_images(items)
    tensors = list(collated) if isinstance(collated, tuple) else [collated]
    return sum(t.numel() * t.element_size() for t in tensors) // batch


def trainer_run(dataset: ImageFolderDataset, args: argparse.Namespace, out: Path, loader_crops: bool) -> dict:
    """Trains ResNet-18 at 224 px for ``args.steps`` (+1 warm-up) steps; the wait share and step time."""
    import torchvision

    from byol_pytorch import BYOLTrainer

    torch.manual_seed(0)
    trainer = BYOLTrainer(
        torchvision.models.resnet18(), dataset, args.image_size, batch_size=args.batch_size,
        num_train_steps=args.steps + 1, num_workers=args.workers, loader_crops=loader_crops,
        mixed_precision="no", output_dir=str(out), checkpoint_every=10**6, log_every=1, progress=False,
        seed=args.seed)
    trainer()
    records = [r for r in trainer.history if "loss" in r][1:]  # the first step warms up
    times = [args.batch_size / r["images_per_second"] for r in records]
    waits = [r["data_wait_s"] for r in records]
    return {"workers": trainer.num_workers, "step_s": statistics.mean(times),
            "compute_s": statistics.mean(t - w for t, w in zip(times, waits)),
            "data_wait_fraction": sum(waits) / sum(times), "load": load_average()}


def bare_step(dataset: ImageFolderDataset, args: argparse.Namespace) -> dict:
    """The same learner, optimiser and EMA in a bare loop over ready batches of loader views."""
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18()
    learner = BYOL(net, args.image_size, channels_last=True, ema_total_steps=args.steps + 1)
    learner.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam([p for p in learner.parameters() if p.requires_grad], lr=3e-4)
    batches = [collate_views([dataset[(s * args.batch_size + i) % len(dataset)] for i in range(args.batch_size)])
               for s in range(args.steps + 1)]
    times = []
    for batch in batches:
        start = time.perf_counter()
        loss = learner(views=batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        learner.update_moving_average()
        times.append(time.perf_counter() - start)
    return {"step_s": statistics.mean(times[1:]), "load": load_average()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200, help="JPEGs in the folder (default 200)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--passes", type=int, default=1, help="passes over the folder per decode figure")
    parser.add_argument("--steps", type=int, default=4, help="timed trainer steps (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the training steps")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: the trainer's)")
    parser.add_argument("--skip-trainer", action="store_true", help="decode and bytes figures only")
    parser.add_argument("--folder", default=None, help="reuse or create the JPEG folder here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/data_<size>px.json)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.folder) if args.folder else Path(scratch) / "photos"
        if not any(folder.glob("*.jpg")):
            build_folder(folder, args.files, args.seed)
        old, new = old_dataset(folder, args.image_size), new_dataset(folder, args.image_size, args.seed)
        torch.set_num_threads(1)
        result: dict = {"files": len(new), "image_size": args.image_size, "torch": torch.__version__}
        for name, dataset in (("old", old), ("new", new)):
            rate = items_per_second(dataset, args.passes)
            result[name] = {"images_per_s_per_worker": rate, "load": load_average(),
                            "bytes_per_image_to_device": bytes_per_image(dataset)}
            print(f"[bench_data] {name}: {rate:.1f} images/s in one worker core, "
                  f"{result[name]['bytes_per_image_to_device']:,} bytes per image to the device ({load_average()})",
                  file=sys.stderr, flush=True)
        if not args.skip_trainer:
            torch.set_num_threads(args.threads)
            result["threads"] = args.threads
            for name, dataset, crops in (("old", old_dataset(folder, args.image_size), False),
                                         ("new", ImageFolderDataset(folder, args.image_size), True)):
                result[name]["trainer"] = trainer_run(dataset, args, Path(scratch) / f"run_{name}", crops)
                print(f"[bench_data] trainer {name}: {result[name]['trainer']}", file=sys.stderr, flush=True)
            result["new"]["bare_learner"] = bare_step(new, args)
            print(f"[bench_data] bare learner: {result['new']['bare_learner']}", file=sys.stderr, flush=True)

    print(report(result))
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / f"data_{args.image_size}px.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nJSON written to {out}")


def report(result: dict) -> str:
    lines = ["| path | images/s per worker core | bytes per image to device | load |", "|---|---|---|---|"]
    for name in ("old", "new"):
        r = result[name]
        lines.append(f"| {name} | {r['images_per_s_per_worker']:.1f} | {r['bytes_per_image_to_device']:,} | "
                     f"{r['load']} |")
    if "trainer" in result["new"]:
        lines += ["", f"ResNet-18, {result['image_size']} px, {result['threads']} threads:", "",
                  "| path | workers | step s | of which waiting for data | load |", "|---|---|---|---|---|"]
        for name in ("old", "new"):
            t = result[name]["trainer"]
            lines.append(f"| trainer, {name} | {t['workers']} | {t['step_s']:.2f} | "
                         f"{100 * t['data_wait_fraction']:.1f} % | {t['load']} |")
        bare = result["new"]["bare_learner"]
        lines.append(f"| bare learner loop, new views ready | - | {bare['step_s']:.2f} | - | {bare['load']} |")
        compute = result["new"]["trainer"]["compute_s"]
        lines.append(f"\ntrainer step without the wait: {compute:.2f} s, "
                     f"{100 * (compute / bare['step_s'] - 1):+.1f} % against the bare loop")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
