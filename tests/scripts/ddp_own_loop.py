"""A user's own DDP loop around BYOL(sync_batchnorm=...); run by tests under torch.distributed.run on CPU.

Usage: ddp_own_loop.py OUT SYNC [SYNC ...] (SYNC: none, true or false). For each
SYNC in turn (one launch, one process group), each process writes its learner's
state and the warnings it saw to OUT/SYNC/rank<R>.pt.
"""

import os
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from byol_pytorch import BYOL


def train(out: Path, sync: bool | None, rank: int) -> None:
    torch.manual_seed(0)  # the same initial weights everywhere
    net = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 8, 3, padding=1), bn=nn.BatchNorm2d(8), relu=nn.ReLU(),
                                    pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(8, 4)))
    learner = BYOL(net, 16, hidden_layer="flatten", projection_size=8, projection_hidden_size=16,
                   sync_batchnorm=sync)
    model = nn.parallel.DistributedDataParallel(learner)
    optimizer = torch.optim.SGD([p for p in learner.parameters() if p.requires_grad], lr=0.1)
    torch.manual_seed(1 + rank)  # each process its own images and views
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            loss = model(torch.rand(4, 3, 16, 16))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            learner.update_moving_average()
    messages = [str(w.message) for w in caught if "SyncBatchNorm" in str(w.message)]
    state = {k: v.clone() for k, v in learner.state_dict().items() if v.is_floating_point()}
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"world_size": int(os.environ["WORLD_SIZE"]), "warnings": messages, "state": state},
               out / f"rank{rank}.pt")


def main() -> None:
    dist.init_process_group("gloo")
    for name in sys.argv[2:]:
        train(Path(sys.argv[1]) / name, {"none": None, "true": True, "false": False}[name], dist.get_rank())
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
