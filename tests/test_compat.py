"""Scripts written for the published byol-pytorch 0.9 interface run here unchanged.

Each block is a user's script in the form that interface is taught: the
training loop, SimSiam, the model's keyword arguments, custom augmentations
with kornia (a second view with ``kornia.filters.GaussianBlur2d``), images from
``torch.randn``, embeddings, and the Accelerate trainer, once as it is usually
called and once with every keyword of its original signature. Only sizes and
step counts shrink, by text replacement (``SMALLER``), so the code that runs
is the code a user wrote. The checks after each block look at what the user
would look at: the saved network, the shapes, the files.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torchvision import models

from byol_pytorch import BYOL

# torch.randn images warn once per learner (they are outside [0, 1]); the loop test checks that warning.
pytestmark = pytest.mark.filterwarnings("ignore:images should be floats in")

SMALLER = [
    ("models.resnet50()", "models.resnet18()"),
    ("256", "32"),
    ("range(100)", "range(2)"),
    ("100_000", "2"),
    ("10000", "64"),
]

SETUP = """
import torch
from torchvision import models
from byol_pytorch import BYOL

resnet = models.resnet50()
learner = BYOL(resnet, image_size = 256, hidden_layer = 'avgpool')
"""

TRAIN = """
opt = torch.optim.Adam(learner.parameters(), lr = 3e-4)

def sample_unlabelled_images():
    return torch.randn(20, 3, 256, 256)

for _ in range(100):
    images = sample_unlabelled_images()
    loss = learner(images)
    opt.zero_grad()
    loss.backward()
    opt.step()
    learner.update_moving_average()

torch.save(resnet.state_dict(), './improved-net.pt')
"""

LOOP = SETUP + TRAIN

SIMSIAM = """
learner = BYOL(
    resnet,
    image_size = 256,
    hidden_layer = 'avgpool',
    use_momentum = False        # SimSiam: no moving-average target
)
"""

KEYWORDS = """
learner = BYOL(
    resnet,
    image_size = 256,
    hidden_layer = 'avgpool',
    projection_size = 256,
    projection_hidden_size = 4096,
    moving_average_decay = 0.99
)
"""

AUGMENT_FN = """
import kornia
from torch import nn

augment_fn = nn.Sequential(
    kornia.augmentation.RandomHorizontalFlip()
)

learner = BYOL(
    resnet,
    image_size = 256,
    hidden_layer = -2,
    augment_fn = augment_fn
)
"""

AUGMENT_FN2 = """
augment_fn2 = nn.Sequential(
    kornia.augmentation.RandomHorizontalFlip(),
    kornia.filters.GaussianBlur2d((3, 3), (1.5, 1.5))
)

learner = BYOL(
    resnet,
    image_size = 256,
    hidden_layer = -2,
    augment_fn = augment_fn,
    augment_fn2 = augment_fn2
)
"""

EMBEDDING = """
imgs = torch.randn(2, 3, 256, 256)
projection, embedding = learner(imgs, return_embedding = True)
"""

TRAINER = """
import torch
from torchvision import models
from byol_pytorch import BYOL, BYOLTrainer, MockDataset

trainer = BYOLTrainer(
    models.resnet50(),
    dataset = MockDataset(256, 10000),
    image_size = 256,
    hidden_layer = 'avgpool',
    learning_rate = 3e-4,
    num_train_steps = 100_000,
    batch_size = 16,
    checkpoint_every = 1000
)

trainer()
"""

TRAINER_EVERY_KEYWORD = """
import torch
from torchvision import models
from byol_pytorch import BYOLTrainer, MockDataset

resnet = models.resnet50()

trainer = BYOLTrainer(
    resnet,
    image_size = 256,
    hidden_layer = -2,
    learning_rate = 3e-4,
    dataset = MockDataset(256, 10000),
    num_train_steps = 100_000,
    batch_size = 16,
    optimizer_klass = torch.optim.Adam,
    checkpoint_every = 1000,
    checkpoint_folder = './checkpoints',
    byol_kwargs = dict(
        projection_size = 128,
        projection_hidden_size = 1024,
        moving_average_decay = 0.98,
        augment_fn2 = None,
        sync_batchnorm = None
    ),
    optimizer_kwargs = dict(betas = (0.9, 0.98), eps = 1e-7),
    accelerator_kwargs = dict(cpu = True, mixed_precision = 'no')
)

trainer()
"""


def run(*blocks: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Executes the blocks in order in one namespace, as one script, after SMALLER."""
    namespace = {} if namespace is None else namespace
    for block in blocks:
        for old, new in SMALLER:
            block = block.replace(old, new)
        exec(compile(block, "user-script", "exec"), namespace)  # noqa: S102 - the blocks above
    return namespace


def _seeded_resnet18() -> nn.Module:
    torch.manual_seed(0)
    return models.resnet18()


@pytest.fixture(autouse=True)
def _in_tmp_and_fresh_accelerate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_accelerate_state) -> None:
    monkeypatch.chdir(tmp_path)


def test_the_training_loop_improves_the_users_network(tmp_path: Path) -> None:
    untrained = _seeded_resnet18()
    torch.manual_seed(0)  # the script's resnet gets the same initial weights
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        namespace = run(LOOP)
    # torch.randn images are accepted; a warning says they are outside [0, 1].
    assert any("images should be floats in [0, 1]" in str(w.message) for w in caught)
    saved = torch.load(tmp_path / "improved-net.pt", weights_only=True)
    reloaded = models.resnet18()
    reloaded.load_state_dict(saved)  # strict: the user's own architecture
    assert not torch.equal(saved["conv1.weight"], untrained.state_dict()["conv1.weight"])
    assert torch.equal(saved["fc.weight"], untrained.state_dict()["fc.weight"])  # after avgpool: never trained
    resnet = namespace["resnet"]
    assert type(resnet.bn1) is nn.BatchNorm2d and not any(m._forward_hooks for m in resnet.modules())
    assert namespace["learner"].ema_step == 2


def test_simsiam_in_the_same_loop() -> None:
    namespace = run(SETUP, SIMSIAM)
    before = {k: v.clone() for k, v in namespace["resnet"].state_dict().items()}
    with pytest.warns(UserWarning, match="update_moving_average\\(\\) does nothing with use_momentum=False"):
        run(TRAIN, namespace=namespace)
    learner, after = namespace["learner"], namespace["resnet"].state_dict()
    assert learner.target_encoder is None and torch.isfinite(namespace["loss"])
    # The loop trained the user's network, and what it saved is that network.
    assert not torch.equal(after["conv1.weight"], before["conv1.weight"])
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    saved = torch.load("improved-net.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in after.items())


def test_keywords_with_the_papers_values() -> None:
    learner = run(SETUP, KEYWORDS)["learner"]
    assert learner.online_predictor[-1].out_features == 32  # projection_size 256 made smaller
    assert learner.online_projector[0].out_features == 4096 and learner.moving_average_decay == 0.99


def test_custom_augmentations_with_kornia_and_embeddings() -> None:
    namespace = run(SETUP, AUGMENT_FN)
    assert namespace["learner"].augment1 is namespace["augment_fn"] is namespace["learner"].augment2
    namespace = run(AUGMENT_FN2, namespace=namespace)
    learner = namespace["learner"]
    assert learner.augment1 is namespace["augment_fn"] and learner.augment2 is namespace["augment_fn2"]
    images = torch.rand(4, 3, 32, 32)
    loss = learner(images)
    loss.backward()
    assert torch.isfinite(loss)
    namespace = run(EMBEDDING, namespace=namespace)
    assert namespace["projection"].shape == (2, 256) and namespace["embedding"].shape == (2, 512)


def test_the_trainer_as_usually_called() -> None:
    untrained = _seeded_resnet18().state_dict()
    torch.manual_seed(0)  # the script's resnet gets the same initial weights
    run(TRAINER)
    net = models.resnet18()
    net.load_state_dict(torch.load("checkpoints/net.pt", weights_only=True))
    trained = net.state_dict()
    assert not torch.equal(trained["conv1.weight"], untrained["conv1.weight"])
    assert torch.equal(trained["fc.weight"], untrained["fc.weight"])  # after avgpool: never trained
    assert all(torch.isfinite(v).all() for v in trained.values() if v.is_floating_point())


def test_the_trainer_with_every_original_keyword() -> None:
    from byol_pytorch.checkpoint import list_checkpoints, safe_load

    namespace = run(TRAINER_EVERY_KEYWORD)
    trainer = namespace["trainer"]
    assert trainer.output_dir == Path("./checkpoints") and trainer.accelerator.device.type == "cpu"
    assert trainer.config.projection_size == 128 and trainer.config.moving_average_decay == 0.98
    assert trainer.learner.online_predictor[-1].out_features == 128 and trainer.learner.augment2 is not None
    assert trainer.config.projection_hidden_size == 1024 and trainer.config.hidden_layer == -2
    state = safe_load(list_checkpoints(Path("checkpoints"))[-1])
    group = state["optimizer"]["param_groups"][0]
    assert group["betas"] == (0.9, 0.98) and group["eps"] == 1e-7
    net = models.resnet18()
    net.load_state_dict(torch.load("checkpoints/net.pt", weights_only=True))
    assert torch.equal(net.conv1.weight, namespace["resnet"].conv1.weight)
    # What 0.9's trainer had beyond its keywords reads the same values here.
    assert trainer.byol is trainer.learner and trainer.checkpoint_folder == Path("./checkpoints")
    assert (trainer.num_train_steps, trainer.checkpoint_every) == (2, 1000)
    trainer.wait()
    trainer.print("from a script written for 0.9")


def test_a_learners_state_saves_and_loads_with_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    learner = run(LOOP)["learner"]
    # 0.9's layout names the network twice (net.*, online_encoder.net.*), one tensor under two names:
    # save_file refuses tensors that share memory (as it did with 0.9), so each name gets its own copy.
    save_file({k: v.clone() for k, v in learner.state_dict().items()}, tmp_path / "learner.safetensors")
    fresh = BYOL(models.resnet18(), image_size=32, hidden_layer="avgpool")
    fresh.load_state_dict(load_file(tmp_path / "learner.safetensors"))
    for key, value in learner.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    assert fresh.ema_step == learner.ema_step == 2


def test_positional_order_of_the_original() -> None:
    names = list(inspect.signature(BYOL).parameters)[:14]
    assert names == ["net", "image_size", "hidden_layer", "projection_size", "projection_hidden_size",
                     "augment_fn", "augment_fn2", "moving_average_decay", "use_momentum", "sync_batchnorm",
                     "use_simplicial_embeddings", "sem_num_simplices", "sem_simplex_dim", "sem_temperature"]
    learner = BYOL(models.resnet18(), 32, "avgpool", 64, 128, None, None, 0.9, True, False)
    assert learner.online_predictor[-1].out_features == 64 and learner.moving_average_decay == 0.9


def test_forward_trains_as_it_did() -> None:
    from byol_pytorch import BYOLTrainer, MockDataset

    trainer = BYOLTrainer(models.resnet18(), image_size=32, hidden_layer="avgpool", learning_rate=3e-4,
                          dataset=MockDataset(32, 16), num_train_steps=2, batch_size=4,
                          accelerator_kwargs={"cpu": True, "mixed_precision": "no"})
    net = trainer.forward()  # 0.9's trainer was an nn.Module: trainer() called forward()
    assert trainer.step == 2 and net is trainer.net and (Path("checkpoints") / "net.pt").exists()
