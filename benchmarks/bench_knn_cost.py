"""What one pass of the kNN monitor costs, in training steps: the measure behind ``knn_every`` of ``--data`` runs.

A monitor pass extracts the features of every evaluation image (eval mode,
no gradients, batches of 256) and votes; a training step runs two views
forward and backward through the online network and forward through the
target. The ratio ``r`` printed is (monitor seconds per evaluation image) /
(training seconds per training image). A pass over ``N`` images every ``K``
steps of ``B`` images then costs ``N * r / (K * B)`` of the run;
``byol_pytorch.cli.train.monitor_interval`` picks the smallest ``K`` that keeps
this under 2 %.

Example::

    python benchmarks/bench_knn_cost.py                      # resnet18, 64 px, batch 32, 512 images
    python benchmarks/bench_knn_cost.py --model resnet50 --image-size 224 --batch-size 64 --device cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time

import torch
import torchvision

from byol_pytorch import BYOLTrainer, DigitsDataset, MockDataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-images", type=int, default=512)
    parser.add_argument("--steps", type=int, default=6, help="timed training steps (after 2 of warm-up)")
    parser.add_argument("--out", default="/tmp/bench-knn-cost")
    args = parser.parse_args()
    size = args.image_size
    shutil.rmtree(args.out, ignore_errors=True)
    evaluation = torch.utils.data.Subset(DigitsDataset(size, split="all", return_labels=True),
                                         range(args.eval_images))
    trainer = BYOLTrainer(torchvision.models.get_model(args.model), dataset=MockDataset(size, 10_000),
                          image_size=size, hidden_layer="avgpool", batch_size=args.batch_size, num_workers=0,
                          num_train_steps=2 + args.steps, eval_dataset=evaluation, checkpoint_every=10_000,
                          log_every=1, output_dir=args.out, progress=False, handle_signals=False)
    trainer()
    # Steps 3 onwards (the first two warm up the allocator and the loader): from metrics.jsonl's clock.
    times = [record["time"] for record in trainer.history if "loss" in record]
    step_s = (times[-1] - times[1]) / (len(times) - 2)
    trainer.knn_accuracy()  # warm-up
    start = time.perf_counter()
    trainer.knn_accuracy()
    knn_s = time.perf_counter() - start
    ratio = (knn_s / args.eval_images) / (step_s / args.batch_size)
    print(json.dumps({"model": args.model, "image_size": size, "batch_size": args.batch_size,
                      "eval_images": args.eval_images, "step_s": round(step_s, 4), "knn_pass_s": round(knn_s, 4),
                      "ratio_r": round(ratio, 4), "device": str(trainer.accelerator.device),
                      "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
