"""Do the default views' new colour part and kornia's teach the same? kNN on held-out photo patches.

BYOL trains a ResNet-18 on patches of scikit-image's colour photographs with the
paper's two views, once with the default colour part
(:class:`byol_pytorch.model.photometric.PhotometricAugmentation`) and once with
kornia's modules in its place (the views before issue 20: ``ColorJitter``,
``RandomGrayscale``, ``RandomGaussianBlur``, ``RandomSolarize``); the crop and
flip are kornia's in both. Each photograph is a class. Training and the kNN
memory take patches from the left 60 % of every photograph, the queries from
the right 40 %, so a query was never seen. Reported per seed: the kNN top-1 of
the trained network and of the same network at its random initialisation.

Examples::

    python benchmarks/bench_view_quality.py                     # seeds 0 1 2, 200 steps
    python benchmarks/bench_view_quality.py --seeds 0 --steps 50

The JSON goes to ``benchmarks/results/view_quality.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path

import kornia.augmentation as K
import numpy as np
import skimage.data
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from byol_pytorch import BYOL
from byol_pytorch.model.augment import blur_kernel_size

HERE = Path(__file__).resolve().parent
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")
SOURCE_SIDE = 160  # each photograph's shorter side, before patches are cut
PATCH, VIEW = 48, 32  # patch side; the views (and the queries) are resized to VIEW


def photographs() -> list[torch.Tensor]:
    """The colour photographs, ``(3, H, W)`` float in [0, 1], shorter side SOURCE_SIDE."""
    out = []
    for name in PHOTOS:
        image = torch.from_numpy(np.ascontiguousarray(getattr(skimage.data, name)())).permute(2, 0, 1)[:3]
        scale = SOURCE_SIDE / min(image.shape[1:])
        size = [round(side * scale) for side in image.shape[1:]]
        out.append(F.interpolate(image[None].float() / 255, size=size, mode="area")[0])
    return out


def patches(photos: list[torch.Tensor], count: int, held_out: bool, generator: torch.Generator
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random patches per photograph from its left 60 % (or its right 40 %), and their labels."""
    images, labels = [], []
    for label, photo in enumerate(photos):
        height, width = photo.shape[1:]
        split = int(width * 0.6)
        low, high = (split, width - PATCH) if held_out else (0, split - PATCH)
        xs = torch.randint(low, high + 1, (count,), generator=generator)
        ys = torch.randint(0, height - PATCH + 1, (count,), generator=generator)
        images += [photo[:, y:y + PATCH, x:x + PATCH] for x, y in zip(xs.tolist(), ys.tolist())]
        labels += [label] * count
    return torch.stack(images), torch.tensor(labels)


def kornia_colour(view: int) -> nn.Module:
    """The colour part of the default views before issue 20."""
    blur_p, solarize_p = (1.0, 0.0) if view == 1 else (0.1, 0.2)
    kernel = blur_kernel_size(VIEW)
    ops: list[nn.Module] = [K.ColorJitter(0.4, 0.4, 0.2, 0.1, p=0.8), K.RandomGrayscale(p=0.2),
                            K.RandomGaussianBlur((kernel, kernel), sigma=(0.1, 2.0), p=blur_p)]
    if solarize_p:
        ops.append(K.RandomSolarize(thresholds=(0.5, 0.5), additions=0.0, p=solarize_p))
    return _Clamped(nn.Sequential(*ops))


class _Clamped(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).clamp_(0.0, 1.0)


def knn_top1(learner: BYOL, memory: tuple[torch.Tensor, torch.Tensor], queries: tuple[torch.Tensor, torch.Tensor],
             k: int = 10) -> float:
    """Cosine kNN top-1 (majority of the k nearest) of the queries against the memory."""
    learner.eval()
    with torch.no_grad():
        embed = (lambda x: F.normalize(learner(F.interpolate(x, size=VIEW, mode="area"), return_embedding=True,
                                               return_projection=False), dim=1))
        keys, probe = embed(memory[0]), embed(queries[0])
    learner.train()
    nearest = (probe @ keys.T).topk(k, dim=1).indices
    votes = F.one_hot(memory[1][nearest], len(PHOTOS)).sum(1)
    return (votes.argmax(1) == queries[1]).float().mean().item()


def train_and_score(learner: BYOL, seed: int, args: argparse.Namespace, photos: list[torch.Tensor],
                    label: str) -> dict:
    """Trains ``learner`` by BYOL on the seed's training patches; its kNN top-1 before and after, and the time."""
    generator = torch.Generator().manual_seed(1000 + seed)  # the same patches for every setting compared
    train, _ = patches(photos, 400, held_out=False, generator=generator)
    memory = patches(photos, 100, held_out=False, generator=generator)
    queries = patches(photos, 100, held_out=True, generator=generator)
    initial = knn_top1(copy.deepcopy(learner), memory, queries)
    optimizer = torch.optim.Adam(learner.trained_parameters(), lr=args.lr)
    started = time.perf_counter()
    for _ in range(args.steps):
        batch = train[torch.randint(0, len(train), (args.batch_size,))]
        loss = learner(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        learner.update_moving_average()
    seconds = time.perf_counter() - started
    trained = knn_top1(learner, memory, queries)
    print(f"{label:10s} seed {seed}: kNN top-1 {trained:.3f} (random init {initial:.3f}), "
          f"final loss {loss.item():.3f}, {seconds:.0f} s", flush=True)
    return {"seed": seed, "knn_top1": trained, "knn_top1_random_init": initial, "final_loss": loss.item(),
            "train_seconds": seconds}


def summarise(runs: list[dict], key: str, names: tuple[str, ...], args: argparse.Namespace, **extra: object) -> None:
    """Prints each setting's mean and spread over the seeds and writes every run and the summary to ``args.out``."""
    summary = {}
    for name in names:
        values = [r["knn_top1"] for r in runs if r[key] == name]
        summary[name] = {"mean": statistics.mean(values),
                         "stdev": statistics.stdev(values) if len(values) > 1 else 0.0}
        print(f"{name}: kNN top-1 {summary[name]['mean']:.3f} ± {summary[name]['stdev']:.3f} over seeds {args.seeds}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"arguments": {k: str(v) for k, v in vars(args).items()}, "runs": runs,
                                    "summary": summary, **extra, "load_average": os.getloadavg(),
                                    "torch_threads": torch.get_num_threads()}, indent=2))
    print(f"written to {args.out}")


def run(pipeline: str, seed: int, args: argparse.Namespace, photos: list[torch.Tensor]) -> dict:
    torch.manual_seed(seed)
    learner = BYOL(torchvision.models.resnet18(num_classes=10), VIEW, hidden_layer="avgpool")
    if pipeline == "kornia":
        learner.augment1.colour, learner.augment2.colour = kornia_colour(1), kornia_colour(2)
    return {"pipeline": pipeline, **train_and_score(learner, seed, args, photos, pipeline)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "view_quality.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    photos = photographs()
    runs = [run(pipeline, seed, args, photos) for seed in args.seeds for pipeline in ("ours", "kornia")]
    summarise(runs, "pipeline", ("ours", "kornia"), args, photos=PHOTOS)


if __name__ == "__main__":
    main()
