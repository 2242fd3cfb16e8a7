"""What scripts written for byol-pytorch 0.9.1 do beyond its README works here unchanged (issue 25).

The state dict tests load files that 0.9.1 itself wrote: tests/data/make_v091_fixtures.py
made them, run once with 0.9.1 from PyPI on the path (its docstring has the
commands); tests/data/make_v100_fixtures.py made the files of our own 1.0.0's
first layout, run with the commit before this layout.
"""

from __future__ import annotations

import importlib.util
import random
import runpy
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

import byol_pytorch
from byol_pytorch import BYOL, BYOLTrainer
from byol_pytorch.model.simplicial import SimplicialEmbedding

from .conftest import assert_same_state, free_port, state_copy, tiny_cnn

DATA = Path(__file__).parent / "data"
SCRIPTS = Path(__file__).parent / "scripts"


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


V091 = _module(DATA / "make_v091_fixtures.py")  # the fixtures' network and sizes (its 0.9.1 import is lazy)
V100 = _module(DATA / "make_v100_fixtures.py")


def _v091_learner(simplicial: bool, **kwargs) -> BYOL:
    return BYOL(V091.fixture_net(), V091.IMAGE_SIZE, projection_size=V091.PROJECTION,
                projection_hidden_size=V091.HIDDEN, use_simplicial_embeddings=simplicial, **V091.SEM_OPTIONS, **kwargs)


# -- 1. module paths -----------------------------------------------------------------------------------------------

V091_MODULE_NAMES = ["BYOL", "EMA", "MLP", "SEM", "MaybeSyncBatchnorm", "NetWrapper", "RandomApply", "SimSiamMLP",
                     "cosine_loss_fn", "default", "divisible_by", "exists", "flatten", "get_module_device",
                     "kl_loss_fn", "l2norm", "set_requires_grad", "singleton", "update_moving_average"]


def test_every_public_name_of_0_9_modules_imports_and_is_the_librarys_own() -> None:
    from byol_pytorch import byol_pytorch as v09
    from byol_pytorch import trainer

    assert all(hasattr(v09, name) for name in V091_MODULE_NAMES)
    assert v09.BYOL is byol_pytorch.BYOL  # a re-export, not a second implementation
    assert trainer.BYOLTrainer is BYOLTrainer and trainer.MockDataset is byol_pytorch.MockDataset
    assert trainer.DEFAULT_DDP_KWARGS.find_unused_parameters is True
    assert next(trainer.cycle([1, 2])) == 1 and trainer.exists(0)
    with pytest.raises(ImportError, match="from einops import rearrange"):
        from byol_pytorch.byol_pytorch import rearrange  # noqa: F401
    with pytest.raises(ImportError, match="from torch.utils.data import DataLoader"):
        from byol_pytorch.trainer import DataLoader  # noqa: F401
    assert byol_pytorch.SEM is v09.SEM  # 0.9's package exported BYOL, SEM, BYOLTrainer, MockDataset


def test_0_9_helpers_keep_their_meaning() -> None:
    from byol_pytorch import byol_pytorch as v09

    x, y = torch.randn(5, 8), torch.randn(5, 8)
    torch.testing.assert_close(v09.cosine_loss_fn(x, y), 2 - 2 * nn.functional.cosine_similarity(x, y))
    assert v09.flatten(torch.zeros(2, 3, 4)).shape == (2, 12) and v09.default(None, 3) == 3
    assert v09.MaybeSyncBatchnorm() is nn.BatchNorm1d and v09.MaybeSyncBatchnorm(True) is nn.SyncBatchNorm
    ema, old, new = v09.EMA(0.9), torch.ones(3), torch.zeros(3)
    torch.testing.assert_close(ema.update_average(old, new), torch.full((3,), 0.9))
    assert ema.update_average(None, new) is new
    average, current = nn.Linear(2, 2), nn.Linear(2, 2)
    expected = average.weight.detach() * 0.9 + current.weight.detach() * 0.1
    v09.update_moving_average(ema, average, current)
    torch.testing.assert_close(average.weight.detach(), expected)
    sem = v09.SEM(16, temperature=0.5, dim_simplex=4)
    assert sem.dim_simplex == 4
    torch.testing.assert_close(sem(torch.randn(3, 16)).view(3, 4, 4).sum(-1), torch.ones(3, 4))


def test_random_apply_decides_once_for_the_whole_batch() -> None:
    from byol_pytorch.byol_pytorch import RandomApply

    random.seed(0)
    apply = RandomApply(lambda x: x + 1, p=0.5)
    outcomes = {tuple(apply(torch.zeros(6)).tolist()) for _ in range(40)}
    assert outcomes == {(0.0,) * 6, (1.0,) * 6}  # every image the same, both outcomes seen
    assert torch.equal(RandomApply(torch.neg, p=0.0)(torch.ones(3)), torch.ones(3))
    with pytest.raises(ValueError, match="p must be a probability"):
        RandomApply(torch.neg, p=1.5)


# -- 2. simplicial embeddings --------------------------------------------------------------------------------------

def test_simplicial_embeddings_sit_between_representation_and_projector() -> None:
    plain, sem = _v091_learner(False), _v091_learner(True)
    assert not BYOL(tiny_cnn(), 16).online_encoder.use_simplicial_embeddings  # off by default
    embed, simplex, mlp = sem.online_encoder.projector
    assert embed[0].in_features == 8 and embed[0].out_features == 16 and mlp[0].in_features == 16
    assert simplex.simplex_dim == 4 and simplex.temperature == 0.5
    sem.eval()
    rep = torch.randn(3, 8)
    codes = simplex(embed(rep))
    torch.testing.assert_close(codes.view(3, 4, 4).sum(-1), torch.ones(3, 4))
    torch.testing.assert_close(sem.online_encoder.projector(rep), mlp(codes))
    loss = sem(torch.rand(4, 3, 16, 16))
    loss.backward()
    assert embed[0].weight.grad is not None and plain.online_encoder.projector[0].in_features == 8
    with pytest.raises(ValueError, match="sem_simplex_dim must be a positive integer, got 0"):
        BYOL(tiny_cnn(), 16, use_simplicial_embeddings=True, sem_simplex_dim=0)
    with pytest.raises(ValueError, match="width 10 is not a multiple of sem_simplex_dim 4"):
        SimplicialEmbedding(10, simplex_dim=4)


# -- 3. the whole network follows the learner ----------------------------------------------------------------------

@pytest.mark.parametrize("move", ["double", "half", "to64"])
def test_the_whole_network_classifier_included_follows_the_learner(move: str) -> None:
    net = tiny_cnn()
    learner = BYOL(net, 16, projection_size=8, projection_hidden_size=16)
    dtype = {"double": torch.float64, "half": torch.float16, "to64": torch.float64}[move]
    learner.to(torch.float64) if move == "to64" else getattr(learner, move)()
    assert {p.dtype for p in net.parameters()} == {p.dtype for p in learner.parameters()} == {dtype}
    learner.float()
    assert net(torch.rand(2, 3, 16, 16)).dtype == torch.float32
    if move == "double":
        learner.double()
        assert torch.isfinite(learner(torch.rand(4, 3, 16, 16, dtype=torch.float64)))


class _ScaledNet(nn.Module):
    """A parameter and a buffer on the network itself: the tracer shares the one and snapshots the other."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.scale = nn.Conv2d(3, 8, 3), nn.Parameter(torch.ones(8))
        self.register_buffer("shift", torch.zeros(8))
        self.pool, self.flat, self.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.pool(self.conv(x) * self.scale[:, None, None] + self.shift[:, None, None])))


def test_the_traced_graph_follows_a_conversion_and_1_0_0_constants_are_not_loaded() -> None:
    net = _ScaledNet()
    learner = BYOL(net, 16, hidden_layer="flat", projection_size=8, projection_hidden_size=16)
    graph = learner.online_encoder.hidden_encoder.traced
    constants = [name for name, _ in graph.named_buffers() if name.startswith("_tensor_constant")]
    assert constants and "_tensor_constant" not in str(list(learner.state_dict()))
    learner.double()
    assert graph.scale is net.scale and net.scale.dtype == torch.float64
    assert all(buffer.dtype == torch.float64 for buffer in graph.buffers())
    assert learner(torch.rand(4, 3, 16, 16, dtype=torch.float64)).isfinite()
    # 1.0.0 saved the traced graph, its constants included: they are dropped on load, the rest maps.
    old = {f"online_encoder.traced.{k[len('online_encoder.net.'):]}": v for k, v in learner.state_dict().items()
           if k.startswith("online_encoder.net.") and not k.startswith("online_encoder.net.fc.")}
    old.update({f"online_encoder.traced.{name}": buffer for name, buffer in graph.named_buffers()})
    old.update({k: v for k, v in learner.state_dict().items() if not k.startswith(("net.", "online_encoder.net."))})
    BYOL(_ScaledNet(), 16, hidden_layer="flat", projection_size=8, projection_hidden_size=16).double().load_state_dict(old)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_moves_the_classifier_too() -> None:
    net = tiny_cnn()
    BYOL(net, 16, projection_size=8, projection_hidden_size=16).cuda()
    assert net.fc.weight.is_cuda


def test_ddp_without_unused_parameter_search_skips_the_classifier() -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        for ignored in (True, False):
            learner = BYOL(tiny_cnn(), 16, projection_size=8, projection_hidden_size=16, sync_batchnorm=False)
            assert set(learner._ddp_params_and_buffers_to_ignore) >= {"net.fc.weight", "net.fc.bias"}
            if not ignored:  # the control: DDP then waits for the classifier's gradients, which never come
                del learner._ddp_params_and_buffers_to_ignore
            model = DistributedDataParallel(learner, find_unused_parameters=False)
            model(torch.rand(4, 3, 16, 16)).backward()
            if ignored:
                model(torch.rand(4, 3, 16, 16)).backward()
            else:
                with pytest.raises(RuntimeError, match="finished reduction"):
                    model(torch.rand(4, 3, 16, 16)).backward()
    finally:
        dist.destroy_process_group()


def test_sync_batchnorm_conversion_reaches_the_graph_that_runs() -> None:
    from byol_pytorch.distributed import convert_sync_batchnorm

    learner = BYOL(tiny_cnn(), 16, projection_size=8, projection_hidden_size=16)
    graph = learner.online_encoder.hidden_encoder.traced  # outside the module tree, the one the forward runs
    original = graph.bn
    restore = convert_sync_batchnorm(learner)
    assert isinstance(graph.bn, nn.SyncBatchNorm) and graph.bn.weight is original.weight
    assert isinstance(learner.net.bn, nn.SyncBatchNorm)
    restore()
    assert graph.bn is original and learner.net.bn is original


# -- 4. the encoders' surface --------------------------------------------------------------------------------------

def test_encoders_return_projection_and_representation_as_in_0_9() -> None:
    net = tiny_cnn()
    learner = BYOL(net, 16, projection_size=8, projection_hidden_size=16).eval()
    x = torch.rand(3, 3, 16, 16)
    projection, representation = learner.online_encoder(x)
    assert projection.shape == (3, 8) and representation.shape == (3, 8)
    assert torch.equal(learner.online_encoder(x, return_projection=False), representation)
    assert torch.equal(learner.online_encoder.get_representation(x), representation)
    assert torch.equal(learner.online_encoder.projector(representation), projection)
    target_projection, target_representation = learner.target_encoder(x)
    assert torch.equal(target_projection, projection) and torch.equal(target_representation, representation)
    assert learner.net is net and learner.online_encoder.net is net and learner.online_predictor[0].in_features == 8
    with pytest.raises(AttributeError, match="get_representation"):
        learner.online_encoder.hidden  # noqa: B018 - 0.9's hook state
    with pytest.raises(AttributeError, match="read .projector"):
        learner.online_encoder._get_projector  # noqa: B018
    assert learner._get_target_encoder() is learner.target_encoder


def test_writing_beta_fixes_tau_from_the_next_update_on() -> None:
    learner = BYOL(tiny_cnn(), 16, projection_size=8, projection_hidden_size=16, ema_total_steps=10)
    assert learner.target_ema_updater.beta == learner.current_tau == 0.99
    target = learner.target_encoder.projector[0].weight
    online = learner.online_encoder.projector[0].weight
    with torch.no_grad():
        online.add_(1.0)
    before = target.detach().clone()
    learner.target_ema_updater.beta = 0.5  # replaces the cosine schedule from here on
    learner.update_moving_average()
    torch.testing.assert_close(target.detach(), 0.5 * before + 0.5 * online.detach())
    assert learner.target_ema_updater.beta == learner.current_tau == 0.5  # still 0.5 after a step
    with pytest.raises(ValueError, match=r"beta \(tau\) must be a number in \[0, 1\]"):
        learner.target_ema_updater.beta = 1.5


# -- 5. the state dict as a file format ----------------------------------------------------------------------------

@pytest.mark.parametrize("simplicial", [False, True])
def test_a_state_dict_that_0_9_1_wrote_loads_and_computes_what_0_9_1_did(simplicial: bool) -> None:
    saved = torch.load(DATA / f"byol091_{'simplicial' if simplicial else 'plain'}.pt", weights_only=True)
    learner = _v091_learner(simplicial)
    assert set(learner.state_dict()) - {"ema_steps"} == set(saved["state_dict"])  # 0.9.1's names, ours beside
    learner.load_state_dict(saved["state_dict"])  # strict
    learner.eval()
    with torch.no_grad():
        projection, representation = learner.online_encoder(saved["images"])
        target_projection = learner.target_encoder(saved["images"])[0]
    torch.testing.assert_close(projection, saved["projection"])
    torch.testing.assert_close(representation, saved["representation"])
    torch.testing.assert_close(target_projection, saved["target_projection"])

    class LightningStyle(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.learner = _v091_learner(simplicial)

    wrapper = LightningStyle()
    wrapper.load_state_dict({f"learner.{k}": v for k, v in saved["state_dict"].items()}, strict=True)
    assert_same_state(state_copy(wrapper.learner), state_copy(learner))


@pytest.mark.parametrize("simplicial", [False, True])
def test_simplicial_mismatch_names_the_option(simplicial: bool) -> None:
    saved = torch.load(DATA / f"byol091_{'simplicial' if simplicial else 'plain'}.pt", weights_only=True)
    with pytest.raises(ValueError, match=f"use_simplicial_embeddings={simplicial}"):
        _v091_learner(not simplicial).load_state_dict(saved["state_dict"])


def test_the_first_1_0_0_layout_still_loads_and_computes_the_same() -> None:
    saved = torch.load(DATA / "byol100_learner.pt", weights_only=True)
    assert any(k.startswith("online_encoder.traced.") for k in saved["state_dict"])
    torch.manual_seed(1)
    learner = BYOL(V100.tiny_net(), 16, projection_size=8, projection_hidden_size=16)
    fc = learner.net.fc.weight.detach().clone()
    learner.load_state_dict(saved["state_dict"])  # strict
    learner.eval()
    with torch.no_grad():
        projection, representation = learner.online_encoder(learner.normalize(saved["images"]))
    torch.testing.assert_close(representation, saved["representation"])
    torch.testing.assert_close(projection, saved["projection"])
    assert torch.equal(learner.net.fc.weight, fc)  # the old layout had no classifier: it keeps its weights


def test_per_process_statistics_saved_under_1_0_0_names_are_restored() -> None:
    from byol_pytorch.distributed import capture_rng_state
    from byol_pytorch.run_state import restore_process_state

    learner = BYOL(V100.tiny_net(), 16, projection_size=8, projection_hidden_size=16)
    old_names = {"online_encoder.traced.bn.running_mean": torch.full((8,), 3.0),
                 "online_projector.1.running_var": torch.full((16,), 5.0),
                 "target_encoder.traced.bn.running_mean": torch.full((8,), 7.0)}
    # A checkpoint made on a stop request keeps each process's own batch-norm statistics by tensor name.
    state = {"step": 2, "rng_per_process": [capture_rng_state()], "buffers_per_process": [old_names]}
    restore_process_state(state, learner, 0, 1, seed=0)
    assert torch.equal(learner.net.bn.running_mean, torch.full((8,), 3.0))
    assert torch.equal(learner.online_encoder.projector[1].running_var, torch.full((16,), 5.0))
    assert torch.equal(learner.target_encoder.net.bn.running_mean, torch.full((8,), 7.0))


@pytest.mark.usefixtures("fresh_accelerate_state")
def test_a_1_0_0_trainer_checkpoint_resumes(tmp_path: Path) -> None:
    def trainer(folder: Path, **extra) -> BYOLTrainer:
        torch.manual_seed(0)
        return BYOLTrainer(V100.tiny_net(), dataset=byol_pytorch.MockDataset(16, 32), image_size=16,
                           output_dir=str(folder), **V100.TRAINER_OPTIONS, **extra)

    old = torch.load(DATA / "trainer100_step2.pt", weights_only=True)
    # The optimiser holds the same parameters in the same order as 1.0.0's: its saved state maps onto them.
    fresh = trainer(tmp_path / "fresh")
    fresh.optimizer.load_state_dict(old["optimizer"])
    trained = fresh.learner.trained_parameters()
    assert len(trained) == len(old["optimizer"]["state"])
    for index, parameter in enumerate(trained):
        assert torch.equal(fresh.optimizer.state[parameter]["momentum_buffer"],
                           old["optimizer"]["state"][index]["momentum_buffer"])

    full = trainer(tmp_path / "full")
    full()
    (tmp_path / "old").mkdir()
    shutil.copy(DATA / "trainer100_step2.pt", tmp_path / "old" / "checkpoint-00000002.pt")
    resumed = trainer(tmp_path / "old", resume=True)
    resumed()
    assert resumed.start_step == 2 and resumed.step == 4
    # 1.0.0 made its two steps on another machine and thread count: equal up to that rounding.
    for key, value in state_copy(full.learner).items():
        torch.testing.assert_close(state_copy(resumed.learner)[key], value, rtol=1e-2, atol=1e-3)


@pytest.mark.usefixtures("fresh_accelerate_state")
def test_what_0_9_1_trainers_module_nature_gave_fails_with_what_to_use(tmp_path: Path) -> None:
    trainer = BYOLTrainer(tiny_cnn(), dataset=byol_pytorch.MockDataset(16, 8), image_size=16,
                          output_dir=str(tmp_path), **{k: v for k, v in V100.TRAINER_OPTIONS.items()
                                                       if k not in ("optimizer", "optimizer_kwargs")})
    with pytest.raises(AttributeError, match=r"was an nn.Module.*trainer.learner.state_dict"):
        trainer.state_dict()
    with pytest.raises(AttributeError, match="trainer.dataset"):
        trainer.dataloader  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'nonsense'"):
        trainer.nonsense  # noqa: B018
    assert isinstance(trainer.step, int) and trainer.byol is trainer.learner


# -- a whole script written for 0.9.1 ------------------------------------------------------------------------------

def test_a_script_written_for_0_9_1_runs_unchanged() -> None:
    result = runpy.run_path(str(SCRIPTS / "v091_habits.py"))
    net, learner = result["net"], result["learner"]
    assert net[5].weight.dtype == torch.float64  # .to() moved the classifier
    assert torch.equal(result["embedding"], result["representation"])
    assert torch.equal(result["rep_only"], result["representation"]) and torch.equal(result["hidden"],
                                                                                     result["representation"])
    torch.testing.assert_close(result["via_learner"], result["representation"])
    assert result["betas"][0] == pytest.approx(0.99) and result["betas"][-1] > 0.998
    assert_same_state(state_copy(result["restored_net"]), state_copy(net))
    assert_same_state(state_copy(result["reloaded"]), state_copy(result["model"]))
    assert learner.ema_step == 4
