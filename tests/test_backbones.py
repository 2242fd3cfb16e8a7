"""timm and Hugging Face transformers backbones through BYOL, the trainer and the command line.

Random weights, tiny sizes, nothing downloaded: timm models are built with
``pretrained=False``, transformers models from small config objects.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from byol_pytorch import BYOL, BYOLTrainer, MockDataset
from byol_pytorch.cli import main
from byol_pytorch.cli.networks import default_hidden_layer

from .conftest import assert_same_state, state_copy

TIMM_MODELS = ["resnet18", "convnext_atto", "vit_tiny_patch16_224"]
SIDE = 32


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def timm_model(name: str, **kwargs: object) -> torch.nn.Module:
    size = {"img_size": SIDE} if name.startswith("vit_") else {}
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=10, **size, **kwargs)


def _learner(net: torch.nn.Module, hidden_layer: str, **kwargs: object) -> BYOL:
    return BYOL(net, SIDE, hidden_layer=hidden_layer, projection_size=8, projection_hidden_size=16, **kwargs)


# -- timm ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TIMM_MODELS)
def test_timm_model_trains_through_its_pre_logits_features(name: str) -> None:
    net = timm_model(name)
    before = state_copy(net)
    learner = _learner(net, "pre_logits")
    assert learner.online_encoder.mode == "pre_logits"
    assert_same_state(state_copy(net), before)  # building the learner changed nothing
    assert net.training
    images = torch.rand(4, 3, SIDE, SIDE)
    net.eval()
    with torch.no_grad():
        expected = net.forward_head(net.forward_features(images), pre_logits=True)
        assert torch.equal(learner.online_encoder.get_representation(images), expected)
    net.train()
    assert learner.representation_dim == net.num_features
    loss = learner(images)
    loss.backward()
    assert torch.isfinite(loss)
    # Every parameter but the classifier's (which is not run) gets a finite gradient, the stem's too.
    classifier = {id(p) for p in net.get_classifier().parameters()}
    without = [n for n, p in net.named_parameters() if (p.grad is None) != (id(p) in classifier)]
    assert without == [], without
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    first = next(net.parameters())
    assert first.grad.abs().sum() > 0


def _train_briefly(net: torch.nn.Module, hidden_layer: str, steps: int, out: Path) -> dict[str, torch.Tensor]:
    """Trains ``net`` with the trainer for a few steps in fp32; returns its final state."""
    trainer = BYOLTrainer(net, MockDataset(SIDE, 8), SIDE, hidden_layer=hidden_layer, projection_size=8,
                          projection_hidden_size=16, num_workers=0, mixed_precision="no", progress=False,
                          batch_size=4, num_train_steps=steps, output_dir=str(out))
    return state_copy(trainer())


def test_timm_models_default_to_their_pre_logits_on_the_command_line() -> None:
    for name in TIMM_MODELS:
        assert default_hidden_layer(name, timm_model(name)) == "pre_logits"


def test_trained_timm_network_loads_with_timm_create_model(tmp_path: Path) -> None:
    trained = _train_briefly(timm_model("resnet18"), "pre_logits", 1, tmp_path / "run")
    for file in ("net.safetensors", "net.pt"):
        loaded = timm.create_model("resnet18", num_classes=10, checkpoint_path=str(tmp_path / "run" / file))
        assert_same_state(state_copy(loaded), trained)


@pytest.mark.parametrize("name", TIMM_MODELS)
def test_command_line_trains_a_timm_model_that_timm_loads_back(name: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    # resnet18 is torchvision's unless written timm:resnet18
    model = "timm:" + name if name == "resnet18" else name
    code = main(["train", "--model", model, "--steps", "2", "--batch-size", "4", "--image-size", str(SIDE),
                 "--num-workers", "0", "--projection-hidden-size", "16", "--knn-every", "0", "--no-final-eval",
                 "--mixed-precision", "no", "--threads", "1", "--no-progress", "--out", str(run)])
    assert code == 0, capsys.readouterr().err
    assert "'pre_logits' features" in capsys.readouterr().out
    size = {"img_size": SIDE} if name.startswith("vit_") else {}
    loaded = timm.create_model(name, num_classes=10, checkpoint_path=str(run / "net.safetensors"), **size)
    assert_same_state(state_copy(loaded), torch.load(run / "net.pt", weights_only=True))


# -- Hugging Face transformers -------------------------------------------------------------------------------------

def hf_model(kind: str) -> torch.nn.Module:
    import transformers

    torch.manual_seed(0)
    small = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    if kind == "vit":
        return transformers.ViTModel(transformers.ViTConfig(image_size=SIDE, patch_size=8, **small))
    if kind == "dinov2":
        return transformers.Dinov2Model(transformers.Dinov2Config(image_size=SIDE, patch_size=8, **small))
    return transformers.ConvNextModel(transformers.ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1]))


@pytest.mark.parametrize(("kind", "field", "token_pool", "width"), [
    ("vit", "pooler_output", "cls", 16), ("vit", "last_hidden_state", "mean", 16),
    ("dinov2", "pooler_output", "cls", 16), ("dinov2", "last_hidden_state", "cls", 16),
    ("convnext", "pooler_output", "cls", 16), ("convnext", "last_hidden_state", "cls", 16),
])
def test_transformers_model_trains_on_a_named_output_field(kind: str, field: str, token_pool: str,
                                                           width: int) -> None:
    net = hf_model(kind)
    before = state_copy(net)
    learner = _learner(net, field, token_pool=token_pool)
    assert learner.online_encoder.mode == "field" and learner.representation_dim == width
    assert_same_state(state_copy(net), before)
    images = torch.rand(4, 3, SIDE, SIDE)
    loss = learner(images)
    loss.backward()
    assert torch.isfinite(loss)
    # The gradient reaches the input embedding, through every layer.
    stem = net.embeddings.patch_embeddings.projection if kind != "convnext" else net.embeddings.patch_embeddings
    assert torch.isfinite(stem.weight.grad).all() and stem.weight.grad.abs().sum() > 0
    net.eval()
    with torch.no_grad():
        out = net(images)[field]
        expected = out if out.ndim == 2 else out.mean(dim=(2, 3)) if out.ndim == 4 else (
            out[:, 0] if token_pool == "cls" else out.mean(dim=1))
        assert torch.allclose(learner.online_encoder.get_representation(images), expected)


def test_transformers_output_without_a_field_names_the_fields() -> None:
    net = hf_model("vit")
    with pytest.raises(TypeError, match="name one of its fields as hidden_layer: last_hidden_state, pooler_output"):
        _learner(net, -1)
    with pytest.raises(ValueError, match="'pooled' is neither a module of ViTModel nor a field .* fields: "
                                         "last_hidden_state, pooler_output"):
        _learner(net, "pooled")


def test_transformers_model_through_the_trainer(tmp_path: Path) -> None:
    trained = _train_briefly(hf_model("dinov2"), "pooler_output", 2, tmp_path / "run")
    fresh = hf_model("dinov2")
    from safetensors.torch import load_file

    fresh.load_state_dict(load_file(tmp_path / "run" / "net.safetensors"))
    assert_same_state(state_copy(fresh), trained)
