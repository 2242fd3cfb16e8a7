"""Images/s of BYOLTrainer on one process vs several, for the same global batch.

    python benchmarks/bench_processes.py --batch-size 64                     # one process
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 --num_machines 1 \
        --mixed_precision no --dynamo_backend no benchmarks/bench_processes.py --batch-size 32   # two

Prints one JSON line (main process) with the processes, global batch and images/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile

from torchvision import models

from byol_pytorch import BYOLTrainer, DigitsDataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=64, help="per process")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--image-size", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        trainer = BYOLTrainer(models.resnet18(), dataset=DigitsDataset(args.image_size), image_size=args.image_size,
                              hidden_layer="avgpool", num_train_steps=args.steps, batch_size=args.batch_size,
                              log_every=args.steps, checkpoint_every=10**9, output_dir=out, num_workers=0,
                              mixed_precision="no", progress=False, projection_hidden_size=1024)
        trainer()
        acc = trainer.accelerator
        if acc.is_main_process:
            last = [r for r in trainer.history if "images_per_second" in r][-1]
            print(json.dumps({"processes": acc.num_processes, "global_batch": args.batch_size * acc.num_processes,
                              "steps": args.steps, "images_per_second": round(last["images_per_second"], 1)}))


if __name__ == "__main__":
    main()
