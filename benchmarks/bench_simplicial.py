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
import sys
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_view_quality import VIEW, photographs, summarise, train_and_score

from byol_pytorch import BYOL

HERE = Path(__file__).resolve().parent


def run(simplicial: bool, seed: int, args: argparse.Namespace, photos: list[torch.Tensor]) -> dict:
    torch.manual_seed(seed)
    learner = BYOL(torchvision.models.resnet18(num_classes=10), VIEW, hidden_layer="avgpool",
                   use_simplicial_embeddings=simplicial)
    name = "simplicial" if simplicial else "plain"
    return {"setting": name, **train_and_score(learner, seed, args, photos, name)}


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
    summarise(runs, "setting", ("plain", "simplicial"), args)


if __name__ == "__main__":
    main()
