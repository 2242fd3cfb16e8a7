from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from byol_pytorch import BYOL
from byol_pytorch.model import heads
from byol_pytorch.model.heads import HeadBatchNorm, MLPHead, SimSiamProjector

from .conftest import tiny_cnn

SCRIPTS = Path(__file__).parent / "scripts"


def _norms(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@pytest.mark.parametrize("sync", [None, True, False])
def test_sync_batchnorm_reaches_every_head_and_only_the_heads(sync: bool | None) -> None:
    for use_momentum in (True, False):
        net = tiny_cnn()
        learner = BYOL(net, 16, projection_size=8, projection_hidden_size=16, use_momentum=use_momentum,
                       sync_batchnorm=sync)
        head_norms = [m for name, m in learner.named_modules()
                      if ("projector" in name or "predictor" in name) and m in _norms(learner)]
        # BYOL: online projector, predictor and target projector; SimSiam: 3 in the projector, 1 in the predictor.
        assert len(head_norms) == (3 if use_momentum else 4)
        if sync is False:
            assert all(type(m) is nn.BatchNorm1d for m in head_norms)
        else:
            assert all(isinstance(m, HeadBatchNorm) and m.sync is sync for m in head_norms)
        assert type(net.bn) is nn.BatchNorm2d  # the user's network keeps its own batch norm


def test_head_batch_norm_is_plain_batch_norm_in_one_process() -> None:
    plain, syncable = nn.BatchNorm1d(6), HeadBatchNorm(6, sync=True)
    with torch.no_grad():
        plain.weight.uniform_(), plain.bias.uniform_()
    syncable.load_state_dict(plain.state_dict())  # the same keys as BatchNorm1d
    x = torch.randn(5, 6)
    assert torch.equal(syncable(x), plain(x))
    assert torch.equal(syncable.running_mean, plain.running_mean) and syncable.num_batches_tracked == 1
    # SyncBatchNorm's own forward, which it borrows in a multi-process run, finds every attribute it reads
    # (without torch.distributed it takes the per-process branch: the same numbers).
    assert torch.equal(nn.SyncBatchNorm.forward(syncable, x), plain(x))
    assert not isinstance(syncable, nn.SyncBatchNorm)  # DDP refuses SyncBatchNorm in a CPU model
    assert set(MLPHead(4, 2, 6, sync_batchnorm=True).state_dict()) == set(MLPHead(4, 2, 6, False).state_dict())
    assert set(SimSiamProjector(4, 2, 6).state_dict()) == set(SimSiamProjector(4, 2, 6, False).state_dict())


def test_sync_batchnorm_is_checked() -> None:
    with pytest.raises(TypeError, match="sync_batchnorm must be None, True or False, got 'yes'"):
        BYOL(tiny_cnn(), 16, projection_hidden_size=16, sync_batchnorm="yes")


def test_the_decision_follows_the_processes_and_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two processes, seen from one: torch.distributed as a DDP run would report it.
    monkeypatch.setattr(heads, "distributed_world_size", lambda: 2)
    heads._warn_sync_unavailable.cache_clear()
    x = torch.randn(4, 6)
    reference = nn.BatchNorm1d(6)(x)

    # On CPU, torch's SyncBatchNorm cannot run: True warns once for all modules and calls, None is silent.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outputs = [HeadBatchNorm(6, sync=True)(x) for _ in range(3) for _ in range(2)]
    messages = [str(w.message) for w in caught if "SyncBatchNorm" in str(w.message)]
    assert len(messages) == 1 and "cannot run on cpu tensors" in messages[0]
    assert all(torch.equal(out, reference) for out in outputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(HeadBatchNorm(6, sync=None)(x), reference)

    # Where the device supports it, True and None hand over to SyncBatchNorm in training only.
    synced: list[nn.Module] = []

    def record(module: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        synced.append(module)
        return inputs

    monkeypatch.setattr(heads, "SYNC_DEVICES", ("cpu",))
    monkeypatch.setattr(nn.SyncBatchNorm, "forward", record)
    for sync in (True, None):
        HeadBatchNorm(6, sync=sync)(x)
        HeadBatchNorm(6, sync=sync).eval()(x)
    HeadBatchNorm(6, sync=False)(x)
    assert len(synced) == 2
    monkeypatch.setattr(heads, "distributed_world_size", lambda: 1)
    HeadBatchNorm(6, sync=True)(x)
    assert len(synced) == 2


SYNC_SETTINGS = ("true", "none")


@pytest.fixture(scope="module")
def own_ddp_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both settings in one launch of two CPU processes (a launch costs more than the training)."""
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
               str(SCRIPTS / "ddp_own_loop.py"), str(out), *SYNC_SETTINGS]
    subprocess.run(command, check=True, env=env, timeout=300, capture_output=True)
    return out


@pytest.mark.parametrize("sync", SYNC_SETTINGS)
def test_own_ddp_loop_on_cpu_processes(own_ddp_runs: Path, sync: str) -> None:
    tmp_path = own_ddp_runs / sync
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["world_size"] == 2
    # CPU processes fall back to per-process statistics: True says so once per process, None silently.
    assert len(rank0["warnings"]) == len(rank1["warnings"]) == (1 if sync == "true" else 0)
    # DDP keeps the parameters equal; the running statistics are each process's own.
    for key, value in rank0["state"].items():
        if "running" not in key:
            assert torch.equal(value, rank1["state"][key]), key
    assert not torch.equal(rank0["state"]["online_encoder.projector.1.running_mean"],
                           rank1["state"]["online_encoder.projector.1.running_mean"])
