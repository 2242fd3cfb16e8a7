"""Pretrain a ResNet-18 with BYOLTrainer on one process or many.

    python examples/train_accelerate.py --steps 50
    accelerate launch examples/train_accelerate.py --steps 50
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 --num_machines 1 \
        --mixed_precision no --dynamo_backend no examples/train_accelerate.py --steps 50   # two CPU processes

It trains on scikit-learn's handwritten digits (real images shipped with the
package), so it runs anywhere without downloads; swap in your own dataset.

Each launch writes to a folder named after its process count
(``runs/train_accelerate-1proc``, ``-2proc``, ...; ``--out`` chooses another).
Running the same launch again continues that run from its newest checkpoint
(up to ``--steps``; a finished run is left as it is): the trainer itself
refuses a folder that holds checkpoints unless told to resume.
"""

from __future__ import annotations

import argparse
import os

from torchvision import models

from byol_pytorch import BYOLTrainer, DigitsDataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--out", default=None, help="run folder (default: runs/train_accelerate-<N>proc)")
    args = parser.parse_args(argv)
    # WORLD_SIZE is set by accelerate launch (and torchrun) before the script starts: the same on every process.
    out = args.out or f"runs/train_accelerate-{int(os.environ.get('WORLD_SIZE', '1'))}proc"

    trainer = BYOLTrainer(
        models.resnet18(),
        dataset=DigitsDataset(args.image_size, split="train"),
        image_size=args.image_size,
        hidden_layer="avgpool",
        learning_rate=3e-4,
        num_train_steps=args.steps,
        batch_size=args.batch_size,
        checkpoint_every=max(args.steps // 4, 1),
        output_dir=out,
        resume=True,  # continue what an earlier launch into this folder left (a new run if there is none)
        projection_hidden_size=1024,
        num_workers=0,
    )
    trainer()
    trainer.accelerator.print(f"done: the improved network is in {out}/net.pt")


if __name__ == "__main__":
    main()
