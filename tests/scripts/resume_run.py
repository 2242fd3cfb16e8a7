"""Trains for STEPS steps with checkpoints every 2; `slow` sleeps per item, `resume` resumes.

Writes the final learner state to OUT/final.pt. Used by the kill-and-resume test.
"""

import sys
import time
from collections import OrderedDict

import torch
from torch import nn

from byol_pytorch import BYOLTrainer, MockDataset


class Slow(MockDataset):
    def __getitem__(self, index: int) -> torch.Tensor:
        time.sleep(0.02)
        return super().__getitem__(index)


def main() -> None:
    out, steps, mode = sys.argv[1], int(sys.argv[2]), (sys.argv[3] if len(sys.argv) > 3 else "")
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)  # the same initial network in every run
    net = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 8, 3, padding=1), bn=nn.BatchNorm2d(8), relu=nn.ReLU(),
                                    pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(8, 4)))
    dataset = (Slow if mode == "slow" else MockDataset)(16, 32)
    trainer = BYOLTrainer(net, dataset=dataset, image_size=16, hidden_layer="flatten", num_train_steps=steps,
                          batch_size=4, checkpoint_every=2, output_dir=out, num_workers=0, projection_size=8,
                          projection_hidden_size=16, mixed_precision="no", progress=False,
                          resume=mode == "resume")
    trainer()
    learner = trainer.learner
    torch.save({k: v for k, v in learner.state_dict().items() if isinstance(v, torch.Tensor)}, f"{out}/final.pt")


if __name__ == "__main__":
    main()
