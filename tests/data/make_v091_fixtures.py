"""Writes the state dicts of byol-pytorch 0.9.1 that tests/test_habits.py loads (run once; the .pt files are committed).

Run with 0.9.1 itself on the path, not this repository's package::

    pip download byol-pytorch==0.9.1 --no-deps -d /tmp/byol-0.9.1
    unzip /tmp/byol-0.9.1/byol_pytorch-0.9.1-py3-none-any.whl -d /tmp/byol091
    PYTHONPATH=/tmp/byol091 python tests/data/make_v091_fixtures.py   # needs einops and beartype

Each file holds the learner's ``state_dict()`` after two training steps and an
EMA update, a batch of images, and what 0.9.1 computed for them in eval mode:
the online encoder's ``(projection, representation)`` and the target's projection.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
IMAGE_SIZE, PROJECTION, HIDDEN = 16, 16, 32
SEM_OPTIONS = {"sem_num_simplices": 4, "sem_simplex_dim": 4, "sem_temperature": 0.5}


def fixture_net() -> nn.Sequential:
    """The network of the fixtures: conv -> bn -> relu -> pool -> flatten -> classifier (hidden layer -2)."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10))


def write(name: str, simplicial: bool) -> None:
    from byol_pytorch import BYOL  # 0.9.1's, from PYTHONPATH

    torch.manual_seed(0)
    learner = BYOL(fixture_net(), image_size=IMAGE_SIZE, hidden_layer=-2, projection_size=PROJECTION,
                   projection_hidden_size=HIDDEN, use_simplicial_embeddings=simplicial, **SEM_OPTIONS)
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-2)
    for _ in range(2):
        loss = learner(torch.rand(8, 3, IMAGE_SIZE, IMAGE_SIZE))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        learner.update_moving_average()
    learner.eval()
    images = torch.rand(4, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        projection, representation = learner.online_encoder(images)
        target_projection, _ = learner.target_encoder(images)
    torch.save({"state_dict": learner.state_dict(), "images": images, "projection": projection,
                "representation": representation, "target_projection": target_projection}, HERE / name)
    print(f"wrote {HERE / name}: {len(learner.state_dict())} keys")


if __name__ == "__main__":
    write("byol091_plain.pt", simplicial=False)
    write("byol091_simplicial.pt", simplicial=True)
