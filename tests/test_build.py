"""The trainer's pieces as functions: each follows the config, and the default rates live in one place."""

from __future__ import annotations

import pytest
import torch

from byol_pytorch import LARS, MockDataset, TrainerConfig
from byol_pytorch.config import DEFAULT_LEARNING_RATES
from byol_pytorch.training import build_accelerator, build_data, build_learner, build_optimizer, build_scheduler
from byol_pytorch.training.build import loader_workers

from .conftest import tiny_cnn

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")
SMALL = {"hidden_layer": "flatten", "projection_size": 8, "projection_hidden_size": 16}


def test_build_learner_takes_the_configs_model_options() -> None:
    config = TrainerConfig(**SMALL, crop_scale=(0.4, 1.0), mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2),
                           ema_schedule=False, num_train_steps=7)
    learner = build_learner(tiny_cnn(), 16, config)
    assert learner.crop_spec.scale == (0.4, 1.0) and learner.normalize.mean == (0.5, 0.5, 0.5)
    assert learner.projection_size == 8 and learner.ema_total_steps is None
    assert build_learner(tiny_cnn(), 16, TrainerConfig(**SMALL, num_train_steps=7)).ema_total_steps == 7


@pytest.mark.parametrize("name", sorted(DEFAULT_LEARNING_RATES))
def test_build_optimizer_uses_the_one_table_of_default_rates(name: str) -> None:
    learner = build_learner(tiny_cnn(), 16, TrainerConfig(**SMALL))
    optimizer = build_optimizer(learner, TrainerConfig(**SMALL, optimizer=name), global_batch_size=512)
    rate = DEFAULT_LEARNING_RATES[name] * (512 / 256 if name == "lars" else 1)  # LARS: base rate x batch/256
    assert optimizer.param_groups[0]["lr"] == pytest.approx(rate)
    assert isinstance(optimizer, LARS) == (name == "lars")
    given = build_optimizer(learner, TrainerConfig(**SMALL, learning_rate=1e-3), 16, torch.optim.SGD, momentum=0.5)
    assert type(given) is torch.optim.SGD and given.param_groups[0]["lr"] == 1e-3
    with pytest.raises(TypeError, match="optimizer_kwargs has 'momentum', which Adam does not take"):
        build_optimizer(learner, TrainerConfig(**SMALL), 16, momentum=0.5)


def test_build_scheduler_sets_the_first_steps_rate_before_it_runs() -> None:
    learner = build_learner(tiny_cnn(), 16, TrainerConfig(**SMALL))
    config = TrainerConfig(**SMALL, num_train_steps=100, warmup_steps=10, learning_rate=1e-3)
    optimizer = build_optimizer(learner, config, 16)
    build_scheduler(optimizer, config)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)  # step 0 is the first warm-up step
    constant = build_optimizer(learner, TrainerConfig(**SMALL, lr_schedule="constant", learning_rate=1e-3), 16)
    build_scheduler(constant, TrainerConfig(**SMALL, lr_schedule="constant"))
    assert constant.param_groups[0]["lr"] == 1e-3


def test_build_accelerator_and_data_follow_the_config(tmp_path) -> None:
    config = TrainerConfig(**SMALL, mixed_precision="no", gradient_accumulation_steps=3, batch_size=4,
                           num_workers=0, output_dir=str(tmp_path))
    learner = build_learner(tiny_cnn(), 16, config)
    accelerator = build_accelerator(config, learner, {"cpu": True})
    assert accelerator.gradient_accumulation_steps == 3 and accelerator.device.type == "cpu"
    data = build_data(MockDataset(16, 20), learner, config, accelerator)
    assert data.length == 20 and data.images_per_batch == 4
    assert next(iter(data.loader(0))).shape == (4, 3, 16, 16)
    assert loader_workers(TrainerConfig(num_workers=3), accelerator) == 3
