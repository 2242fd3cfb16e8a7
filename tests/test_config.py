"""TrainerConfig: one description per option, BYOL's defaults, typed range errors."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from byol_pytorch import BYOL
from byol_pytorch.cli import build_parser
from byol_pytorch.config import BYOL_CONFIG_FIELDS, TrainerConfig
from byol_pytorch.errors import OptionError
from byol_pytorch.model.defaults import MODEL_DEFAULTS, MODEL_OPTIONS


def test_every_option_is_described_once_in_the_config() -> None:
    for field in dataclasses.fields(TrainerConfig):
        assert field.metadata.get("help"), field.name


def test_model_options_default_to_byols_own_defaults() -> None:
    byol = inspect.signature(BYOL).parameters
    config = TrainerConfig()
    # BYOL's signature and the config both read the one place the defaults are named.
    for name in MODEL_OPTIONS:
        assert byol[name].default == getattr(MODEL_DEFAULTS, name), name
    # channels_last is on in the trainer on purpose (it also makes the weights channels-last).
    for name in (n for n in BYOL_CONFIG_FIELDS if n != "channels_last"):
        assert getattr(config, name) == byol[name].default, name
    assert config.moving_average_decay == 0.99 and config.channels_last and not MODEL_DEFAULTS.channels_last
    # Every model option is a config field, so the command line has a flag for each.
    assert set(BYOL_CONFIG_FIELDS) <= {f.name for f in dataclasses.fields(TrainerConfig)}


def test_help_text_with_a_percent_sign_renders() -> None:
    train = build_parser()._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
    text = train.format_help()
    assert "5% of num_train_steps" in text and "%%" not in text


@pytest.mark.parametrize(("options", "option", "problem"), [
    ({"batch_size": 0}, "batch_size", "must be a positive integer, got 0"),
    ({"optimizer": "rmsprop"}, "optimizer", "must be one of adam, adamw, sgd, lars; got 'rmsprop'"),
    ({"moving_average_decay": 1.5}, "moving_average_decay", "must be in [0, 1], got 1.5"),
    ({"learning_rate": -1.0}, "learning_rate", "must be positive, got -1.0"),
    ({"warmup_steps": 11, "num_train_steps": 10}, "warmup_steps", "must be in [0, num_train_steps], got 11"),
    ({"max_grad_norm": 0.0}, "max_grad_norm", "must be positive, got 0.0"),
    ({"num_workers": -1}, "num_workers", "must be >= 0, got -1"),
    ({"knn_every": -1}, "knn_every", "must be >= 0, got -1"),
])
def test_an_option_out_of_range_raises_an_error_naming_it(options: dict, option: str, problem: str) -> None:
    with pytest.raises(OptionError) as caught:
        TrainerConfig.from_kwargs(**options)
    assert (caught.value.option, caught.value.problem) == (option, problem)
    assert str(caught.value) == f"{option} {problem}"
    assert isinstance(caught.value, ValueError)  # what callers caught before keeps working


def test_an_unknown_option_names_the_closest_one() -> None:
    with pytest.raises(TypeError, match="unknown option 'batchsize'; did you mean 'batch_size'"):
        TrainerConfig.from_kwargs(batchsize=4)


@pytest.mark.parametrize(("value", "problem"), [(0, "must be a positive integer or a duration such as 30min, got 0"),
                                                ("30 parsecs", "a step count or a duration such as 90s, 30min or "
                                                 "2h, got '30 parsecs'")])
def test_checkpoint_every_takes_steps_or_a_duration(value: object, problem: str) -> None:
    assert TrainerConfig.from_kwargs(checkpoint_every="30min").checkpoint_every == "30min"
    with pytest.raises(OptionError, match=problem) as err:
        TrainerConfig.from_kwargs(checkpoint_every=value)
    assert err.value.option == "checkpoint_every"


def test_the_defaults_table_of_docs_trainer_matches_the_config() -> None:
    import re
    from pathlib import Path

    import torch

    from byol_pytorch.optim import LARS, optimizer_class
    from byol_pytorch.config import DEFAULT_LEARNING_RATES as DEFAULT_LR

    text = (Path(__file__).resolve().parents[1] / "docs" / "trainer.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| `([^`]*)` \| .+ \|$", text, flags=re.MULTILINE))
    assert rows == {f.name: repr(f.default) for f in dataclasses.fields(TrainerConfig)}
    optimisers = re.findall(r"^\| `'([a-z]+)'` \| `?([^|`]+?)`?(?: x global batch / 256)? \| `([^`]+)` \|$", text,
                            flags=re.MULTILINE)
    assert {name for name, _, _ in optimisers} == set(DEFAULT_LR) == set(TrainerConfig.__dataclass_fields__[
        "optimizer"].metadata["choices"])
    for name, lr, decay in optimisers:
        assert float(lr) == DEFAULT_LR[name], name
        cls = optimizer_class(name)
        default_decay = inspect.signature(cls).parameters["weight_decay"].default
        assert float(decay) == float(default_decay), name
    assert optimizer_class("lars") is LARS and optimizer_class("adamw") is torch.optim.AdamW
