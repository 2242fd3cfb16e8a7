"""A BYOLTrainer script for tests/test_preemption.py: trains a tiny network and records what it read.

    python preempt_run.py OUT STEPS [resume]

Each process appends the dataset indices it reads to ``OUT/read-<rank>-<pid>-<time>.txt``
and, when training ends, writes the learner's tensors to ``OUT/final.pt``. The
environment variable ``BYOL_FAULT=signal:RANK:STEP:SIGNAL:TARGET`` sends a
signal after a step, as ``faulty_cli.py`` does for the command line.
"""

import os
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from faulty_cli import signal_after_step
from torch import nn

from byol_pytorch import BYOLTrainer, MockDataset

IMAGES, BATCH = 40, 4  # per process: with 2 processes an epoch is 5 steps, with 1 it is 10


class Recorded(MockDataset):
    """Logs every index read once ``recording`` is on (the trainer reads item 0 when built, to check it)."""

    def __init__(self, out: Path) -> None:
        super().__init__(16, IMAGES)
        self.log = out / f"read-{os.environ.get('RANK', '0')}-{os.getpid()}-{time.monotonic_ns()}.txt"
        self.recording = False

    def __getitem__(self, index: int) -> torch.Tensor:
        if self.recording:
            with open(self.log, "a") as handle:
                handle.write(f"{index}\n")
        return super().__getitem__(index)


def build_trainer(out: Path, steps: int, resume: bool, **options: Any) -> BYOLTrainer:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)  # the same initial network in every run
    net = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 8, 3, padding=1), bn=nn.BatchNorm2d(8), relu=nn.ReLU(),
                                    pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(8, 4)))
    dataset = Recorded(out)
    trainer = BYOLTrainer(net, dataset=dataset, image_size=16, hidden_layer="flatten", num_train_steps=steps,
                          batch_size=BATCH, checkpoint_every=100, output_dir=str(out), num_workers=0,
                          projection_size=8, projection_hidden_size=16, mixed_precision="no", progress=False,
                          log_every=1, resume=resume, **options)
    dataset.recording = True
    return trainer


def learner_tensors(trainer: BYOLTrainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.learner.state_dict().items() if isinstance(v, torch.Tensor)}


def main() -> None:
    out, steps, resume = Path(sys.argv[1]), int(sys.argv[2]), len(sys.argv) > 3 and sys.argv[3] == "resume"
    kind, *params = os.environ.get("BYOL_FAULT", "none").split(":")
    if kind == "signal":
        signal_after_step(int(params[0]), int(params[1]), params[2], params[3])
    torch.use_deterministic_algorithms(True)
    trainer = build_trainer(out, steps, resume)
    trainer()
    if trainer.accelerator.is_main_process:
        torch.save(learner_tensors(trainer), out / "final.pt")


if __name__ == "__main__":
    main()
