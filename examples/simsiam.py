"""SimSiam: BYOL without the moving-average target network.

Chen & He (2021) showed that BYOL's momentum encoder is not what prevents
collapse: a stop-gradient on the target branch and a predictor suffice.
``BYOL(..., use_momentum=False)`` switches the learner to that variant. There
is no target copy of the network (half the memory of the encoder), the target
is the online projection of the other view under stop-gradient, and SimSiam's
projector and predictor heads are used. The loop is the one of
``examples/train.py`` minus ``update_moving_average()``, which has nothing to
update here.

Run it with::

    python examples/simsiam.py
    python examples/simsiam.py --steps 500 --out simsiam-net.pt

The script trains on scikit-learn's bundled handwritten digits (nothing is
downloaded), saves the network's ``state_dict`` and prints the kNN accuracy on
held-out digits of the trained network next to that of an untrained one with
the same initial weights.
"""

from __future__ import annotations

import argparse

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from byol_pytorch import BYOL, DigitsDataset
from byol_pytorch.evaluate import extract_features, knn_accuracy
from byol_pytorch.model import HiddenLayerEncoder, Normalize


def build_net(name: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return torchvision.models.get_model(name, weights=None)


def knn_top1(net: nn.Module, splits: list[Dataset], device: str) -> float:
    """kNN accuracy of the avgpool features on the test digits, the train digits being the bank."""
    encoder = HiddenLayerEncoder(net, hidden_layer="avgpool")
    (bank_x, bank_y), (test_x, test_y) = (
        extract_features(encoder, split, device=device, transform=Normalize()) for split in splits
    )
    return knn_accuracy(bank_x, bank_y, test_x, test_y)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description="SimSiam pretraining (BYOL with use_momentum=False)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--out", default="./simsiam-net.pt")
    parser.add_argument("--model", default="resnet18", help="a torchvision classification model name")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-digits", type=int, default=None, metavar="N",
                        help="score on the first N digits of each split only (default: all of them; for quick checks)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 2 or args.image_size < 2 or args.log_every < 1 \
            or (args.eval_digits is not None and args.eval_digits < 1):
        parser.error("need --steps >= 1, --batch-size >= 2, --image-size >= 2, --log-every >= 1 and --eval-digits >= 1")

    net = build_net(args.model, args.seed).to(args.device)
    learner = BYOL(net, image_size=args.image_size, hidden_layer="avgpool", use_momentum=False).to(args.device)
    optimizer = torch.optim.Adam(learner.parameters(), lr=args.lr)
    loader = DataLoader(
        DigitsDataset(args.image_size, split="train"),
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(args.seed),
    )

    step = 0
    while step < args.steps:
        for images in loader:
            step += 1
            loss = learner(images.to(args.device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            # No learner.update_moving_average(): SimSiam has no target network.
            if step % args.log_every == 0 or step in (1, args.steps):
                print(f"step {step:5d}  loss {loss.item():.4f}")
            if step == args.steps:
                break

    torch.save(net.state_dict(), args.out)
    print(f"saved the trained network's state_dict to {args.out}")

    splits = [DigitsDataset(args.image_size, split, return_labels=True) for split in ("train", "test")]
    if args.eval_digits is not None:
        splits = [Subset(split, range(min(args.eval_digits, len(split)))) for split in splits]
    before = knn_top1(build_net(args.model, args.seed).to(args.device), splits, args.device)
    after = knn_top1(net, splits, args.device)
    print("kNN top-1 on the held-out digits (avgpool features):")
    print(f"  freshly initialised: {before:.4f}")
    print(f"  after training:      {after:.4f}")
    return {"knn_before": before, "knn_after": after, "final_loss": loss.item()}


if __name__ == "__main__":
    main()
