"""``byol-pytorch`` under ``accelerate launch``, each process also writing its final weights.

Run by tests/test_multinode.py as one of two "machines" on localhost. After
training, every process writes its network and its step to
``$BYOL_DUMP/rank<R>.pt``, outside its run folder, so the test can compare
machines that share no filesystem. ``$BYOL_STOP_AT=N`` interrupts every
process right after the step-N checkpoint.
"""

import os
import sys
from pathlib import Path

import torch

from byol_pytorch.cli import main
from byol_pytorch.trainer import BYOLTrainer
from byol_pytorch.training.callbacks import checkpoints

_train = BYOLTrainer.__call__


def _train_and_dump(self: BYOLTrainer) -> torch.nn.Module:
    net = _train(self)
    dump = Path(os.environ["BYOL_DUMP"])
    dump.mkdir(parents=True, exist_ok=True)
    state = {"net": {k: v.detach().clone() for k, v in net.state_dict().items()}, "step": self.step,
             "logged_steps": [r["step"] for r in self.history if "loss" in r], "process_index": self.accelerator.process_index}
    torch.save(state, dump / f"rank{self.accelerator.process_index}.pt")
    return net


_save = checkpoints.save_checkpoint


def _save_then_stop(trainer: BYOLTrainer, *args: object, **kwargs: object) -> object:
    """Saves, then interrupts every process at step ``$BYOL_STOP_AT`` as a Ctrl-C would."""
    path = _save(trainer, *args, **kwargs)
    if trainer.step == int(os.environ.get("BYOL_STOP_AT", "0")):
        raise KeyboardInterrupt
    return path


if __name__ == "__main__":
    BYOLTrainer.__call__ = _train_and_dump
    checkpoints.save_checkpoint = _save_then_stop  # what the SaveCheckpoints callback calls
    sys.exit(main(sys.argv[1:]))
