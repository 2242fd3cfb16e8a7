"""Simplicial embeddings on and off: kNN top-1 on held-out photo patches.

The held-out benchmark of ``bench_view_quality.py`` (a ResNet-18 trained by BYOL
on patches of scikit-image's colour photographs, each photograph a class;
training and the kNN memory from the left 60 % of every photograph, queries
from the right 40 %), run with the default views once with
``use_simplicial_embeddings=False`` (the default here, the BYOL paper's) and
once with ``True`` (byol-pytorch 0.9's default: L=32 simplices of V=8 at
temperature 0.1). The kNN reads the representation, before the embedding.

Examples::

    python benchmarks/bench_simplicial.py --steps 100 --threads 1
    python benchmarks/bench_simplicial.py --seeds 0 --steps 20

The JSON goes to ``benchmarks/results/simplicial.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_view_quality import VIEW, knn_top1, patches, photographs

from byol_pytorch import BYOL

HERE = Path(__file__).resolve().parent


def run(simplicial: bool, seed: int, args: argparse.Namespace, photos: list[torch.Tensor]) -> dict:
    generator = torch.Generator().manual_seed(1000 + seed)  # the same patches for both settings
    train, _ = patches(photos, 400, held_out=False, generator=generator)
    memory = patches(photos, 100, held_out=False, generator=generator)
    queries = patches(photos, 100, held_out=True, generator=generator)
    torch.manual_seed(seed)
    learner = BYOL(torchvision.models.resnet18(num_classes=10), VIEW, hidden_layer="avgpool",
                   use_simplicial_embeddings=simplicial)
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
    name = "simplicial" if simplicial else "plain"
    print(f"{name:10s} seed {seed}: kNN top-1 {trained:.3f} (random init {initial:.3f}), "
          f"final loss {loss.item():.3f}, {seconds:.0f} s", flush=True)
    return {"setting": name, "seed": seed, "knn_top1": trained, "knn_top1_random_init": initial,
            "final_loss": loss.item(), "train_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "simplicial.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    photos = photographs()
    runs = [run(simplicial, seed, args, photos) for seed in args.seeds for simplicial in (False, True)]
    summary = {}
    for name in ("plain", "simplicial"):
        values = [r["knn_top1"] for r in runs if r["setting"] == name]
        summary[name] = {"mean": statistics.mean(values),
                         "stdev": statistics.stdev(values) if len(values) > 1 else 0.0}
        print(f"{name}: kNN top-1 {summary[name]['mean']:.3f} ± {summary[name]['stdev']:.3f} over seeds {args.seeds}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"arguments": {k: str(v) for k, v in vars(args).items()}, "runs": runs,
                                    "summary": summary, "load_average": os.getloadavg(),
                                    "torch_threads": torch.get_num_threads()}, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
