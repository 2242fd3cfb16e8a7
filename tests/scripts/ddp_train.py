"""Trains a tiny network with BYOLTrainer; run by tests under `accelerate launch` with 2 processes.

Each process writes its final online and target weights to OUT/rank<R>.pt.
"""

import sys
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from byol_pytorch import BYOLTrainer, MockDataset


def main() -> None:
    out = Path(sys.argv[1])
    net = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 8, 3, padding=1), bn=nn.BatchNorm2d(8), relu=nn.ReLU(),
                                    pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(8, 4)))
    trainer = BYOLTrainer(net, dataset=MockDataset(16, 64), image_size=16, hidden_layer="flatten",
                          num_train_steps=6, batch_size=4, checkpoint_every=3, output_dir=str(out / "run"),
                          num_workers=0, projection_size=8, projection_hidden_size=16, mixed_precision="no",
                          progress=False, log_every=2)
    trainer()
    acc = trainer.accelerator
    learner = trainer.learner
    wrapped = trainer.prepared_model
    state = {
        "online": {k: v.clone() for k, v in learner.online_encoder.state_dict().items()},
        "target": {k: v.clone() for k, v in learner.target_encoder.state_dict().items()},
        "num_processes": acc.num_processes,
        "find_unused_parameters": bool(getattr(wrapped, "find_unused_parameters", False)),
        "ddp": type(wrapped).__name__,
        "loss": trainer.history[-1]["loss"],
    }
    torch.save(state, out / f"rank{acc.process_index}.pt")


if __name__ == "__main__":
    main()
