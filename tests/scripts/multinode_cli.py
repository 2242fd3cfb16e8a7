"""``byol-pytorch`` under ``accelerate launch``, each process also writing its final weights.

Run by tests/test_multinode.py as one of two "machines" on localhost. After
training, every process writes its network and its step to
``$BYOL_DUMP/rank<R>.pt``, outside its run folder, so the test can compare
machines that share no filesystem.
"""

import os
import sys
from pathlib import Path

import torch

from byol_pytorch.cli import main
from byol_pytorch.trainer import BYOLTrainer

_train = BYOLTrainer.__call__


def _train_and_dump(self: BYOLTrainer) -> torch.nn.Module:
    net = _train(self)
    dump = Path(os.environ["BYOL_DUMP"])
    dump.mkdir(parents=True, exist_ok=True)
    state = {"net": {k: v.detach().clone() for k, v in net.state_dict().items()}, "step": self.step,
             "logged_steps": [r["step"] for r in self.history if "loss" in r], "process_index": self.accelerator.process_index}
    torch.save(state, dump / f"rank{self.accelerator.process_index}.pt")
    return net


if __name__ == "__main__":
    BYOLTrainer.__call__ = _train_and_dump
    sys.exit(main(sys.argv[1:]))
