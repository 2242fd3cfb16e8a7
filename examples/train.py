"""Self-supervised pretraining of a ResNet with BYOL, in one plain PyTorch loop.

This is the smallest complete use of the library. A torchvision ResNet is
wrapped in :class:`byol_pytorch.BYOL`, which draws two augmented views of each
batch and returns the BYOL loss; the loop only has to step the optimiser and
then move the target network towards the online one with
``learner.update_moving_average()``. No labels are used for training.

The images are scikit-learn's handwritten digits (real 8x8 scans shipped with
scikit-learn, upsampled), so the script runs offline and nothing is
downloaded. The views are the ones made for such images,
``byol_pytorch.model.digit_augmentations`` (the paper's views were made for
photos: a flipped 2 is no digit and colour jitter does nothing to gray
strokes). At the end the script scores the network's ``avgpool`` features on
the held-out digits (kNN top-1 and a linear probe, with the training digits as
the labelled set) against the same network at random initialisation, and
prints the difference: a random ResNet is already a good feature extractor for
these digits, so the margin, not the level, is what training shows.

The defaults are the command line's recipe for these digits: 16-px views
(the scans hold 8x8 pixels), batches of 64, projector and predictor 1,024
wide instead of the paper's 4,096 (made for ImageNet-sized batches), Adam at
3e-4, here for 600 steps. Measured on a shared 2-core CPU with one thread
(``OMP_NUM_THREADS=1``, 3.5 minutes), ``python examples/train.py`` ends
with::

                             kNN top-1   linear probe
      freshly initialised:      0.9244         0.9444
      after training:           0.9622         0.9667
    BYOL changed kNN top-1 by +3.8 points and the linear probe by +2.2 points ...

With ``--seed 1`` and ``--seed 2`` it gained +3.1 and +2.2 kNN points and
+1.3 and +1.8 probe points. Shorter runs are not reliable: 200 steps of 32
images at 32 px moved kNN top-1 by +2.4, -1.3 and -0.2 points over the same
three seeds. With the paper's photo views instead of the digit views, that
short run ended at 0.818 against 0.938 for the untrained network. Float sums depend on the thread count, so another
machine moves these figures by about a point.

Run it with::

    python examples/train.py                      # 600 steps of 64 images, 16x16
    python examples/train.py --steps 1000 --image-size 32 --out my-net.pt

The trained weights are saved as a plain ``state_dict`` of the torchvision
model, so they load back with ``torchvision.models.resnet18()`` and
``load_state_dict``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from byol_pytorch import BYOL, DigitsDataset
from byol_pytorch.evaluate import evaluate_encoder
from byol_pytorch.model import HiddenLayerEncoder, Normalize, digit_augmentations


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="optimiser steps (default: 600)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step (default: 64)")
    parser.add_argument("--image-size", type=int, default=16, help="side of the images in pixels (default: 16)")
    parser.add_argument("--out", default="./improved-net.pt", help="where to save the trained state_dict")
    parser.add_argument(
        "--model", default="resnet18", help="a torchvision classification model name (default: resnet18)"
    )
    parser.add_argument("--head-width", type=int, default=1024,
                        help="hidden width of projector and predictor (default: 1024; the paper's 4096 is sized for "
                             "ImageNet batches)")
    parser.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (default: 3e-4)")
    parser.add_argument("--log-every", type=int, default=50, help="print the loss every N steps (default: 50)")
    parser.add_argument("--eval-digits", type=int, default=None, metavar="N",
                        help="score on the first N digits of each split only (default: all of them; for quick checks)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights, batches and augmentations")
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="where to train (default: cuda if any)"
    )
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "image_size", "log_every", "head_width", "eval_digits"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.batch_size < 2:
        parser.error("--batch-size must be at least 2 (BYOL's heads use batch norm)")
    return args


def build_net(name: str, seed: int) -> nn.Module:
    """A randomly initialised torchvision model; the same seed gives the same weights."""
    torch.manual_seed(seed)
    return torchvision.models.get_model(name, weights=None)


def endless(loader: DataLoader) -> Iterator[torch.Tensor]:
    """Batches from ``loader``, epoch after epoch (reshuffled each epoch)."""
    while True:
        yield from loader


def first(dataset: DigitsDataset, count: int | None) -> Dataset:
    """The first ``count`` items of ``dataset`` (all of them for ``None``)."""
    return dataset if count is None else Subset(dataset, range(min(count, len(dataset))))


def scores(net: nn.Module, bank: Dataset, held_out: Dataset, device: str) -> dict[str, float]:
    """kNN top-1 and linear-probe top-1 of ``net``'s avgpool features on ``held_out``, ``bank`` labelled."""
    encoder = HiddenLayerEncoder(net, hidden_layer="avgpool")
    # The normalisation BYOL applied to the training views (normalize=True below).
    return evaluate_encoder(encoder, bank, held_out, device=device, transform=Normalize())


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    device = args.device

    net = build_net(args.model, args.seed).to(device)
    view_1, view_2 = digit_augmentations(args.image_size)
    learner = BYOL(net, image_size=args.image_size, hidden_layer="avgpool", projection_hidden_size=args.head_width,
                   augment_fn=view_1, augment_fn2=view_2, normalize=True).to(device)
    optimizer = torch.optim.Adam(learner.parameters(), lr=args.lr)

    dataset = DigitsDataset(args.image_size, split="train")
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(args.seed),
    )
    batches = endless(loader)
    print(
        f"BYOL: {args.model} on {len(dataset)} digits at {args.image_size}px, "
        f"{args.steps} steps of {args.batch_size} images"
    )

    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        images = next(batches).to(device)
        loss = learner(images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        learner.update_moving_average()  # the target network follows the online one
        if step % args.log_every == 0 or step in (1, args.steps):
            print(f"step {step:5d}  loss {loss.item():.4f}  ({time.perf_counter() - start:.1f}s)")

    torch.save(net.state_dict(), args.out)
    print(f"saved the trained network's state_dict to {args.out}")

    # The same architecture and seed, untrained, as the reference point.
    bank, held_out = (first(DigitsDataset(args.image_size, split=split, return_labels=True), args.eval_digits)
                      for split in ("train", "test"))
    fresh = build_net(args.model, args.seed).to(device)
    before, after = scores(fresh, bank, held_out, device), scores(net, bank, held_out, device)
    print(f"{args.model} 'avgpool' features on the {len(held_out)} held-out digits "
          f"({len(bank)} training digits labelled for the kNN bank and the probe):")
    print(f"  {'':<22}{'kNN top-1':>10}{'linear probe':>15}")
    for label, row in (("freshly initialised:", before), ("after training:", after)):
        print(f"  {label:<22}{row['knn_top1']:>10.4f}{row['linear_probe_top1']:>15.4f}")
    knn_gain = 100 * (after["knn_top1"] - before["knn_top1"])
    probe_gain = 100 * (after["linear_probe_top1"] - before["linear_probe_top1"])
    print(f"BYOL changed kNN top-1 by {knn_gain:+.1f} points and the linear probe by {probe_gain:+.1f} points "
          "against random initialisation.")
    return {"knn_before": before["knn_top1"], "knn_after": after["knn_top1"],
            "probe_before": before["linear_probe_top1"], "probe_after": after["linear_probe_top1"],
            "final_loss": loss.item()}


if __name__ == "__main__":
    main()
