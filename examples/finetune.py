"""Fine-tune the demo's pretrained network on a few labelled digits, beside the same network from scratch.

    byol-pytorch train                      # the demo: writes runs/byol-<date>-<time>/
    python examples/finetune.py             # fine-tunes the newest runs/byol-* run
    python examples/finetune.py --run runs/byol-20261207-031500 --labels-per-class 20

Both networks are the architecture of the run's ``run.json`` with a new
10-class head; one starts from the BYOL weights (``load_network``), the other
from a random initialisation. Each is trained on the same few labelled
training digits with the same optimiser and schedule, and scored on the 450
test digits.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from byol_pytorch import DigitsDataset, load_network
from byol_pytorch.model import Normalize


def newest_run() -> Path:
    runs = sorted(Path("runs").glob("byol-*"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise SystemExit("no runs/byol-* folder here: run 'byol-pytorch train' first, or pass --run RUN_DIR")
    return runs[-1]


def few_labels(dataset: DigitsDataset, per_class: int) -> Subset:
    """The first ``per_class`` images of each digit."""
    chosen: dict[int, list[int]] = {}
    for index in range(len(dataset)):
        label = int(dataset[index][1])
        if len(chosen.setdefault(label, [])) < per_class:
            chosen[label].append(index)
    return Subset(dataset, sorted(i for indices in chosen.values() for i in indices))


def with_new_head(net: nn.Module, classes: int) -> nn.Module:
    """Replaces the classifier (``fc`` of a ResNet) with a fresh ``classes``-way linear layer."""
    net.fc = nn.Linear(net.fc.in_features, classes)
    return net


def fine_tune(net: nn.Module, data: Subset, epochs: int, lr: float, seed: int) -> nn.Module:
    model = nn.Sequential(Normalize(), net)  # the demo trained on ImageNet-normalised views
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    loader = DataLoader(data, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(seed))
    model.train()
    for _ in range(epochs):
        for images, labels in loader:
            loss = nn.functional.cross_entropy(model(images), labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        schedule.step()
    return model


@torch.no_grad()
def accuracy(model: nn.Module, data: DigitsDataset) -> float:
    model.eval()
    images, labels = zip(*(data[i] for i in range(len(data))))
    return (model(torch.stack(images)).argmax(1) == torch.tensor(labels)).float().mean().item()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=None, help="the demo's run folder (default: newest runs/byol-*)")
    parser.add_argument("--labels-per-class", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    run = args.run or newest_run()
    size = json.loads((run / "run.json").read_text())["image_size"]
    train = few_labels(DigitsDataset(size, split="train", return_labels=True), args.labels_per_class)
    test = DigitsDataset(size, split="test", return_labels=True)

    pretrained = load_network(run)
    scratch = load_network(run)
    torch.manual_seed(args.seed)
    for module in scratch.modules():  # the same architecture, at a random initialisation
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    print(f"{run}: fine-tuning on {len(train)} labelled digits for {args.epochs} epochs, "
          f"scored on {len(test)} test digits")
    for name, net in (("BYOL-pretrained", pretrained), ("from scratch", scratch)):
        torch.manual_seed(args.seed)
        model = fine_tune(with_new_head(net, 10), train, args.epochs, args.lr, args.seed)
        print(f"  {name:<16} test accuracy {accuracy(model, test):.4f}")


if __name__ == "__main__":
    main()
