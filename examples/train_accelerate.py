"""Pretrain a ResNet-18 with BYOLTrainer on one process or many.

    python examples/train_accelerate.py --steps 50
    accelerate launch examples/train_accelerate.py --steps 50
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 --num_machines 1 \
        --mixed_precision no --dynamo_backend no examples/train_accelerate.py --steps 50   # two CPU processes

It trains on scikit-learn's handwritten digits (real images shipped with the
package), so it runs anywhere without downloads; swap in your own dataset.
"""

from __future__ import annotations

import argparse

from torchvision import models

from byol_pytorch import BYOLTrainer, DigitsDataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--out", default="./checkpoints")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    trainer = BYOLTrainer(
        models.resnet18(),
        dataset=DigitsDataset(args.image_size, split="train"),
        image_size=args.image_size,
        hidden_layer="avgpool",
        learning_rate=3e-4,
        num_train_steps=args.steps,
        batch_size=args.batch_size,
        checkpoint_every=max(args.steps // 4, 1),
        output_dir=args.out,
        resume=args.resume,
        projection_hidden_size=1024,
        num_workers=0,
    )
    trainer()
    trainer.accelerator.print(f"done: the improved network is in {args.out}/net.pt")


if __name__ == "__main__":
    main()
