"""BYOL with your own augmentations, a different pipeline for each view.

By default :class:`byol_pytorch.BYOL` draws its two views with the paper's
pipelines, which were designed for natural photos. For other kinds of images
you will usually want your own. ``augment_fn`` replaces the augmentation of
view 1 and ``augment_fn2`` that of view 2 (given only ``augment_fn``, both
views use it). Any callable from a ``(B, C, H, W)`` batch in [0, 1] to a batch
of views of size ``image_size`` works; this script builds two kornia
``nn.Sequential`` pipelines, which draw fresh random parameters for every
image of the batch and run on whatever device the batch is on.

Two things to know:

* With a custom pipeline BYOL does not normalise the views itself (it takes
  the pipeline to be complete), so the pipelines end in
  ``kornia.augmentation.Normalize``, and the same normalisation is applied
  when features are extracted for evaluation.
* Pick transformations that keep what an image *means*. The images here are
  handwritten digits, so instead of horizontal flips (a mirrored 2, 3, 4, 7 or
  9 is no longer that digit) the views get small rotations and shifts.

Like ``examples/train.py`` the script ends by printing the kNN accuracy on
held-out digits of the trained network and of an untrained one with the same
initial weights. A random ResNet-18 is already hard to beat on these digits,
and a run of this length on a CPU typically stays slightly below it; a small
CNN trained with views like these for a few hundred steps does gain clearly
(``tests/test_learning.py``).

Run it with::

    python examples/custom_augment.py
    python examples/custom_augment.py --steps 300 --image-size 32 --out custom-net.pt
"""

from __future__ import annotations

import argparse

import kornia.augmentation as K
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from byol_pytorch import BYOL, DigitsDataset
from byol_pytorch.evaluate import extract_features, knn_accuracy
from byol_pytorch.model import HiddenLayerEncoder

# Statistics the pipelines normalise with (ImageNet's, as usual for torchvision networks).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def normalize() -> nn.Module:
    return K.Normalize(mean=torch.tensor(MEAN), std=torch.tensor(STD))


def view_pipelines(image_size: int) -> tuple[nn.Sequential, nn.Sequential]:
    """Two asymmetric pipelines: view 1 is always blurred, view 2 is sometimes solarized."""
    size = (image_size, image_size)
    blur_kernel = max(3, image_size // 10) | 1  # odd, about a tenth of the image
    view_1 = nn.Sequential(
        K.RandomResizedCrop(size, scale=(0.4, 1.0), ratio=(0.8, 1.25)),
        K.RandomAffine(degrees=15.0, translate=(0.1, 0.1), p=0.8),
        K.ColorJitter(brightness=0.4, contrast=0.4, p=0.8),
        K.RandomGaussianBlur((blur_kernel, blur_kernel), sigma=(0.1, 2.0), p=1.0),
        normalize(),
    )
    view_2 = nn.Sequential(
        K.RandomResizedCrop(size, scale=(0.4, 1.0), ratio=(0.8, 1.25)),
        K.RandomAffine(degrees=15.0, translate=(0.1, 0.1), p=0.8),
        K.ColorJitter(brightness=0.4, contrast=0.4, p=0.8),
        K.RandomSolarize(thresholds=0.1, additions=0.0, p=0.2),
        normalize(),
    )
    return view_1, view_2


def build_net(name: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return torchvision.models.get_model(name, weights=None)


def knn_top1(net: nn.Module, splits: list[Dataset], device: str) -> float:
    """kNN accuracy of the avgpool features on the test digits, the train digits being the bank."""
    encoder = HiddenLayerEncoder(net, hidden_layer="avgpool")
    (bank_x, bank_y), (test_x, test_y) = (
        extract_features(encoder, split, device=device, transform=normalize()) for split in splits
    )
    return knn_accuracy(bank_x, bank_y, test_x, test_y)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description="BYOL with custom kornia augmentations per view")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--out", default="./custom-augment-net.pt")
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

    view_1, view_2 = view_pipelines(args.image_size)
    net = build_net(args.model, args.seed).to(args.device)
    learner = BYOL(
        net,
        image_size=args.image_size,
        hidden_layer="avgpool",
        augment_fn=view_1,
        augment_fn2=view_2,
    ).to(args.device)
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
            learner.update_moving_average()
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
