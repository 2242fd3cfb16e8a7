"""Writes what byol-pytorch 1.0.0 saved before the learner took 0.9's state_dict layout (run once; files committed).

Run with 1.0.0 before that change on the path (the commit before it, e.g. ``git worktree add /tmp/v100 9b16f8c``)::

    cd tests/data && PYTHONPATH=/tmp/v100 python make_v100_fixtures.py

``byol100_learner.pt``: a learner's ``state_dict()`` in the first 1.0.0 layout
(``online_encoder.traced.*``, ``online_projector.*``, ``target_projector.*``, no
classifier), a batch of images and the online representation and projection
1.0.0 computed for them in eval mode. ``trainer100_step2.pt``: the step-2
checkpoint of a 4-step trainer run with ``tests/test_trainer.py``'s options and SGD (with momentum:
it has per-parameter state; Adam would turn the rounding of another thread count into visible differences).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
TRAINER_OPTIONS = {"hidden_layer": "flatten", "projection_size": 8, "projection_hidden_size": 16, "num_workers": 0,
                   "mixed_precision": "no", "progress": False, "log_every": 1, "batch_size": 4,
                   "num_train_steps": 4, "checkpoint_every": 2, "optimizer": "sgd",
                   "optimizer_kwargs": {"momentum": 0.9}}


def tiny_net() -> nn.Sequential:
    """conv -> bn -> relu -> pool -> flatten -> fc (``tests/conftest.py``'s ``tiny_cnn()``)."""
    return nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 8, 3, padding=1), bn=nn.BatchNorm2d(8), relu=nn.ReLU(),
                                     pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(8, 10)))


def write_learner() -> None:
    from byol_pytorch import BYOL

    torch.manual_seed(0)
    learner = BYOL(tiny_net(), image_size=16, projection_size=8, projection_hidden_size=16)
    optimizer = torch.optim.Adam([p for p in learner.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        loss = learner(torch.rand(8, 3, 16, 16))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        learner.update_moving_average()
    learner.eval()
    images = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        representation = learner.online_encoder(learner.normalize(images))
        projection = learner.online_projector(representation)
    torch.save({"state_dict": learner.state_dict(), "images": images, "representation": representation,
                "projection": projection}, HERE / "byol100_learner.pt")


def write_checkpoint() -> None:
    from byol_pytorch import BYOLTrainer, MockDataset

    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        BYOLTrainer(tiny_net(), dataset=MockDataset(16, 32), image_size=16, output_dir=folder, **TRAINER_OPTIONS)()
        shutil.copy(Path(folder) / "checkpoint-00000002.pt", HERE / "trainer100_step2.pt")


if __name__ == "__main__":
    write_learner()
    write_checkpoint()
