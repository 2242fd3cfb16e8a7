"""training/options.py: a config, keywords and byol-pytorch 0.9's dicts made into one config, once."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from accelerate import DistributedDataParallelKwargs
from torch import nn

from byol_pytorch import BYOLTrainer, MockDataset
from byol_pytorch.model.heads import HeadBatchNorm

from .conftest import reset_accelerate_state, tiny_cnn


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


SMALL = {"projection_hidden_size": 16, "num_workers": 0, "progress": False, "batch_size": 4, "num_train_steps": 2}


def _trainer(tmp_path: Path, **kwargs) -> BYOLTrainer:
    options = {**SMALL, **kwargs}
    if "checkpoint_folder" not in options:
        options.setdefault("output_dir", str(tmp_path / "run"))
    return BYOLTrainer(tiny_cnn(), dataset=MockDataset(16, 16), image_size=16, **options)


def _flip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def test_checkpoint_folder_is_output_dir(tmp_path: Path) -> None:
    assert _trainer(tmp_path, checkpoint_folder=tmp_path / "ckpt").output_dir == tmp_path / "ckpt"
    same = _trainer(tmp_path, checkpoint_folder=str(tmp_path / "a" / ".." / "ckpt"), output_dir=tmp_path / "ckpt")
    assert same.output_dir.resolve() == (tmp_path / "ckpt").resolve()
    with pytest.raises(ValueError, match=r"checkpoint_folder='.*ckpt' and output_dir='.*other' name different"):
        _trainer(tmp_path, checkpoint_folder=str(tmp_path / "ckpt"), output_dir=str(tmp_path / "other"))


def test_checkpoint_folder_defaults_to_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    trainer = BYOLTrainer(tiny_cnn(), dataset=MockDataset(16, 16), image_size=16, **SMALL)
    assert trainer.output_dir == Path("./checkpoints")


def test_byol_kwargs_reach_the_learner_and_the_config(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, byol_kwargs={"projection_size": 12, "augment_fn": _flip, "moving_average_decay": 0.9,
                                              "crop_scale": (0.5, 1.0), "hidden_layer": -2})
    learner = trainer.learner
    assert learner.online_predictor[-1].out_features == 12 and trainer.config.projection_size == 12
    assert learner.augment1 is _flip and learner.augment2 is _flip and learner.normalize is None
    assert trainer.config.moving_average_decay == 0.9 == learner.moving_average_decay
    assert trainer.config.hidden_layer == -2 and learner.online_encoder.layer == "flatten"

    simsiam = _trainer(tmp_path, byol_kwargs={"use_momentum": False, "sync_batchnorm": False})
    assert simsiam.learner.target_encoder is None and simsiam.config.use_momentum is False
    assert simsiam.config.sync_batchnorm is False
    assert not any(isinstance(m, HeadBatchNorm) for m in simsiam.learner.modules())
    synced = _trainer(tmp_path, byol_kwargs={"sync_batchnorm": True})
    assert all(m.sync is True for m in synced.learner.modules() if isinstance(m, HeadBatchNorm))
    constant = _trainer(tmp_path, byol_kwargs={"ema_total_steps": None})
    assert constant.learner.ema_total_steps is None and constant.config.ema_schedule is False


@pytest.mark.parametrize(("ours", "theirs", "message"), [
    ({"projection_size": 16}, {"projection_size": 12},
     r"byol_kwargs\['projection_size'\]=12 and projection_size=16 disagree"),
    ({"augment_fn": _flip}, {"augment_fn": nn.Identity()}, r"byol_kwargs\['augment_fn'\]=Identity\(\) and augment_fn="),
    ({"sync_batchnorm": False}, {"sync_batchnorm": True},
     r"byol_kwargs\['sync_batchnorm'\]=True and sync_batchnorm=False disagree"),
    ({"ema_schedule": True}, {"ema_total_steps": None}, r"byol_kwargs\['ema_total_steps'\]=None and ema_schedule"),
    ({}, {"image_size": 32}, r"byol_kwargs\['image_size'\]=32 and image_size=16 disagree"),
    ({"use_momentum": True}, {"use_momentum": False}, r"byol_kwargs\['use_momentum'\]=False and use_momentum=True"),
])
def test_byol_kwargs_conflicts_name_both(tmp_path: Path, ours: dict, theirs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _trainer(tmp_path, byol_kwargs=theirs, **ours)


def test_byol_kwargs_agreeing_with_our_keywords_are_fine(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, projection_size=12, augment_fn=_flip,
                       byol_kwargs={"projection_size": 12, "augment_fn": _flip, "image_size": (16, 16)})
    assert trainer.config.projection_size == 12 and trainer.learner.augment1 is _flip


def test_unknown_byol_kwargs_are_named(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"byol_kwargs has 'projection_sise', which BYOL does not take; did you mean "
                                        r"'projection_size'"):
        _trainer(tmp_path, byol_kwargs={"projection_sise": 12})
    with pytest.raises(TypeError, match="byol_kwargs must be a dict"):
        _trainer(tmp_path, byol_kwargs=[("projection_size", 12)])


def test_optimizer_kwargs_reach_the_optimiser(tmp_path: Path) -> None:
    adam = _trainer(tmp_path, optimizer_kwargs={"betas": (0.8, 0.9), "eps": 1e-6, "lr": 1e-3}).optimizer
    assert isinstance(adam, torch.optim.Adam)
    assert adam.param_groups[0]["betas"] == (0.8, 0.9) and adam.param_groups[0]["eps"] == 1e-6
    assert adam.param_groups[0]["lr"] == 1e-3
    trainer = _trainer(tmp_path, optimizer_klass=torch.optim.SGD, learning_rate=0.05,
                       optimizer_kwargs={"momentum": 0.8, "nesterov": True})
    sgd = trainer.optimizer
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.8
    assert sgd.param_groups[0]["nesterov"] is True and sgd.param_groups[0]["lr"] == 0.05
    with pytest.warns(UserWarning, match="very high for Adam"):  # the warning follows the class, not the name
        _trainer(tmp_path, optimizer_klass=torch.optim.Adam, optimizer="sgd", learning_rate=0.05).optimizer
    lars = _trainer(tmp_path, optimizer="lars", optimizer_kwargs={"trust_coefficient": 0.01}).optimizer
    assert all(group["trust_coefficient"] == 0.01 for group in lars.param_groups)


def test_optimizer_kwargs_mistakes_are_named_when_the_trainer_is_built(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"optimizer_kwargs has 'momentum', which Adam does not take"):
        _trainer(tmp_path, optimizer_kwargs={"momentum": 0.9})
    with pytest.raises(ValueError, match=r"optimizer_kwargs\['lr'\]=0.001 and learning_rate=0.0003 disagree"):
        _trainer(tmp_path, learning_rate=3e-4, optimizer_kwargs={"lr": 1e-3})
    with pytest.raises(TypeError, match="optimizer_kwargs has 'params'"):
        _trainer(tmp_path, optimizer_kwargs={"params": []})


def test_accelerator_kwargs_override_our_defaults(tmp_path: Path) -> None:
    handler = DistributedDataParallelKwargs(bucket_cap_mb=10)
    trainer = _trainer(tmp_path, accelerator_kwargs={"cpu": True, "mixed_precision": "no",
                                                     "kwargs_handlers": [handler]})
    acc = trainer.accelerator
    assert acc.device.type == "cpu" and acc.mixed_precision == "no" and trainer.config.mixed_precision == "no"
    assert acc.ddp_handler is handler  # the user's handler replaces ours of the same class
    reset_accelerate_state()
    accumulating = _trainer(tmp_path, accelerator_kwargs={"gradient_accumulation_steps": 2})
    assert accumulating.accelerator.gradient_accumulation_steps == 2
    assert accumulating.config.gradient_accumulation_steps == 2


def test_accelerator_kwargs_conflicts_and_mistakes_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"accelerator_kwargs\['mixed_precision'\]='no' and mixed_precision='bf16' "
                                         "disagree"):
        _trainer(tmp_path, mixed_precision="bf16", accelerator_kwargs={"mixed_precision": "no"})
    with pytest.raises(TypeError, match=r"accelerator_kwargs has 'mixed_precison', which accelerate.Accelerator "
                                        r"does not take; did you mean 'mixed_precision'"):
        _trainer(tmp_path, accelerator_kwargs={"mixed_precison": "no"})
    from accelerate import Accelerator

    with pytest.raises(ValueError, match="accelerator and accelerator_kwargs were both given"):
        _trainer(tmp_path, accelerator=Accelerator(cpu=True), accelerator_kwargs={"cpu": True})


@pytest.mark.parametrize("hidden_layer", ["flatten", 4, -2])
def test_hidden_layer_by_name_or_index(tmp_path: Path, hidden_layer: str | int) -> None:
    assert _trainer(tmp_path, hidden_layer=hidden_layer).learner.online_encoder.layer == "flatten"


# --- BYOL's own arguments as trainer keywords, and a learner built by the caller ------------------


def test_every_byol_argument_is_a_trainer_keyword(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, hidden_layer="pool", crop_scale=(0.5, 1.0), mean=(0.1, 0.2, 0.3),
                       std=(0.5, 0.5, 0.5), spatial_pool="flatten", token_pool="mean", trace=False)
    learner = trainer.learner
    assert learner.crop_spec.scale == (0.5, 1.0)
    assert (learner.normalize.mean, learner.normalize.std) == ((0.1, 0.2, 0.3), (0.5, 0.5, 0.5))
    assert learner.online_encoder.spatial_pool == "flatten" and learner.online_encoder.token_pool == "mean"
    assert learner.online_encoder.mode == "hook"  # trace=False: no FX graph
    # The options that change training are the config's, so run.json and the checkpoints hold them.
    assert trainer.config.crop_scale == (0.5, 1.0) and trainer.config.mean == (0.1, 0.2, 0.3)
    assert (trainer.config.spatial_pool, trainer.config.token_pool) == ("flatten", "mean")
    simplicial = _trainer(tmp_path / "sem", use_simplicial_embeddings=True, sem_num_simplices=4, sem_simplex_dim=2)
    assert simplicial.learner.online_encoder.projector[0][0].out_features == 8


def test_a_byol_keyword_given_twice_must_agree(tmp_path: Path) -> None:
    same = _trainer(tmp_path / "a", crop_scale=(0.5, 1.0), byol_kwargs={"crop_scale": (0.5, 1.0)})
    assert same.learner.crop_spec.scale == (0.5, 1.0)
    with pytest.raises(ValueError, match=r"byol_kwargs\['crop_scale'\]=\(0.3, 1.0\) and crop_scale=\(0.5, 1.0\)"):
        _trainer(tmp_path / "b", crop_scale=(0.5, 1.0), byol_kwargs={"crop_scale": (0.3, 1.0)})


def test_a_misspelt_keyword_is_still_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown option 'crop_scales'"):
        _trainer(tmp_path, crop_scales=(0.5, 1.0))


def test_a_learner_built_by_the_caller_is_trained_as_it_is(tmp_path: Path) -> None:
    from byol_pytorch import BYOL

    net = tiny_cnn()
    learner = BYOL(net, 16, hidden_layer="pool", projection_size=8, projection_hidden_size=16,
                   moving_average_decay=0.9, crop_scale=(0.6, 1.0))
    keys = list(learner.state_dict())
    options = {k: v for k, v in SMALL.items() if k != "projection_hidden_size"}
    trainer = BYOLTrainer(learner, MockDataset(16, 16), **options, output_dir=str(tmp_path / "run"))
    assert trainer.learner is learner and trainer.net is net
    # The saved config says what the learner really is.
    config = trainer.config
    assert (config.hidden_layer, config.projection_size, config.moving_average_decay) == ("pool", 8, 0.9)
    assert config.ema_schedule is False  # the learner was built without ema_total_steps
    before = net.conv.weight.detach().clone()
    assert trainer() is net
    assert not torch.equal(net.conv.weight, before) and torch.isfinite(net.conv.weight).all()
    assert list(learner.state_dict()) == keys  # the network's weights are held once, by the encoder
    saved = torch.load(tmp_path / "run" / "net.pt", weights_only=True)
    assert torch.equal(saved["conv.weight"], net.conv.weight.detach())


def test_a_learner_built_by_the_caller_takes_no_byol_arguments_here(tmp_path: Path) -> None:
    from byol_pytorch import BYOL

    learner = BYOL(tiny_cnn(), 16, hidden_layer="pool", projection_hidden_size=16)
    with pytest.raises(TypeError, match="net is a BYOL learner.*got projection_size"):
        BYOLTrainer(learner, MockDataset(16, 16), projection_size=8, output_dir=str(tmp_path / "a"))
    with pytest.raises(TypeError, match="got crop_scale"):
        BYOLTrainer(learner, MockDataset(16, 16), crop_scale=(0.5, 1.0), output_dir=str(tmp_path / "b"))
    with pytest.raises(ValueError, match="image_size=32 and the learner's image_size=\\(16, 16\\) disagree"):
        BYOLTrainer(learner, MockDataset(16, 16), 32, output_dir=str(tmp_path / "c"))
    with pytest.raises(TypeError, match="needs image_size"):
        BYOLTrainer(tiny_cnn(), MockDataset(16, 16), output_dir=str(tmp_path / "d"))


def test_one_function_turns_every_route_into_one_config() -> None:
    from byol_pytorch.training.options import resolve_options

    options = {"batch_size": 8, "crop_scale": (0.3, 1.0)}
    byol_kwargs = {"projection_size": 32, "augment_fn": None, "mean": (0.5, 0.5, 0.5)}
    optimizer_kwargs = {"lr": 1e-3, "betas": (0.9, 0.99)}
    accelerator_kwargs = {"mixed_precision": "no", "cpu": True}
    given = [dict(options), dict(byol_kwargs), dict(optimizer_kwargs), dict(accelerator_kwargs)]
    args = resolve_options(None, options, image_size=16, prebuilt=None,
                             views={"augment_fn": None, "augment_fn2": None, "normalize": None},
                             checkpoint_folder="./old-style", byol_kwargs=byol_kwargs,
                             optimizer_kwargs=optimizer_kwargs, accelerator_kwargs=accelerator_kwargs)
    c = args.config
    assert (c.batch_size, c.projection_size, c.learning_rate, c.mixed_precision, c.output_dir) == (
        8, 32, 1e-3, "no", "./old-style")
    assert (c.crop_scale, c.mean) == ((0.3, 1.0), (0.5, 0.5, 0.5)) and args.byol_extra == {}
    assert args.optimizer_kwargs == {"betas": (0.9, 0.99)} and args.accelerator_overrides == {"cpu": True}
    # A pure function: what the caller passed is left as it was.
    assert [options, byol_kwargs, optimizer_kwargs, accelerator_kwargs] == given
    with pytest.raises(ValueError, match=r"optimizer_kwargs\['lr'\]=0.1 and learning_rate=0.001 disagree"):
        resolve_options(None, {"learning_rate": 1e-3}, image_size=16, prebuilt=None, views={},
                        optimizer_kwargs={"lr": 0.1})
