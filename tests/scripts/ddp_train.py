"""examples/train_accelerate.py, run as it is under `accelerate launch`, each process also writing its state.

Usage: ddp_train.py OUT [EXAMPLE FLAGS...]. After the example's trainer has
run, every process writes to OUT/rank<R>.pt its network's weights, its final
online and target weights, its process count, the kind of its wrapped model
and its last logged loss.
"""

import importlib.util
import sys
from pathlib import Path

import torch

from byol_pytorch.trainer import BYOLTrainer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_accelerate.py"
_train = BYOLTrainer.__call__


def _train_and_dump(self: BYOLTrainer) -> torch.nn.Module:
    net = _train(self)
    acc = self.accelerator
    learner, wrapped = self.learner, self.prepared_model
    state = {
        "net": {k: v.detach().clone() for k, v in net.state_dict().items()},
        "online": {k: v.clone() for k, v in learner.online_encoder.state_dict().items()},
        "target": {k: v.clone() for k, v in learner.target_encoder.state_dict().items()},
        "num_processes": acc.num_processes,
        "find_unused_parameters": bool(getattr(wrapped, "find_unused_parameters", False)),
        "ddp": type(wrapped).__name__,
        "loss": [r["loss"] for r in self.history if "loss" in r][-1],
    }
    torch.save(state, Path(sys.argv[1]) / f"rank{acc.process_index}.pt")
    return net


if __name__ == "__main__":
    BYOLTrainer.__call__ = _train_and_dump  # type: ignore[method-assign]
    spec = importlib.util.spec_from_file_location("train_accelerate", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(sys.argv[2:])
