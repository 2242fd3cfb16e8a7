"""A run with a user callback, each process writing what its callback saw to OUT/events<R>.json.

Usage: callback_steps.py OUT (alone, or under accelerate launch). Each
process trains a tiny network for STEPS steps with gradient accumulation and
records every event its callback got, with the step, the process count, and
the records logged.
"""

import json
import sys
from pathlib import Path

import torch

from byol_pytorch import BYOLTrainer, MockDataset, TrainerCallback, TrainerConfig

STEPS = 5


class Recorder(TrainerCallback):
    """Notes each event with ``state.step``; logs a record of its own every step."""

    def __init__(self) -> None:
        self.events: list[list] = []

    def on_train_begin(self, trainer, state, control, **kwargs):
        self.events.append(["train_begin", state.step])

    def on_batch_end(self, trainer, state, control, **kwargs):
        self.events.append(["batch_end", state.step])

    def on_step_end(self, trainer, state, control, **kwargs):
        self.events.append(["step_end", state.step])
        trainer.log({"step": state.step, "own": state.step * 10})

    def on_log(self, trainer, state, control, **kwargs):
        if "own" in kwargs["logs"]:
            self.events.append(["log", kwargs["logs"]["step"]])

    def on_save(self, trainer, state, control, **kwargs):
        self.events.append(["save", state.step])

    def on_train_end(self, trainer, state, control, **kwargs):
        self.events.append(["train_end", state.step])


def main(out: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten())
    config = TrainerConfig(hidden_layer=-1, projection_size=8, projection_hidden_size=16, num_workers=0,
                           mixed_precision="no", progress=False, batch_size=2, gradient_accumulation_steps=2,
                           num_train_steps=STEPS, checkpoint_every=2, output_dir=str(out / "run"))
    recorder = Recorder()
    trainer = BYOLTrainer(net, MockDataset(16, 64), 16, config=config, callbacks=[recorder])
    trainer()
    rank = trainer.accelerator.process_index
    (out / f"events{rank}.json").write_text(json.dumps({
        "processes": trainer.accelerator.num_processes, "events": recorder.events,
        "history": [r["step"] for r in trainer.history if "own" in r]}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
