from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision import models

from byol_pytorch.model.encoder import HiddenLayerEncoder, infer_output_dim, resolve_hidden_layer

from .conftest import assert_same_state, state_copy, tiny_cnn


class Branchy(nn.Module):
    """Data-dependent control flow: FX cannot trace it, so the hook path is used."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(4, 2)
        self.head_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if x.sum() > 0:
            x = x * 2
        x = self.pool(x).flatten(1)
        self.head_calls += 1
        return self.head(x)


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 6, 4, stride=4)
        self.mix = nn.Identity()
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.mix(self.embed(x).flatten(2).transpose(1, 2))  # (B, N, D)
        return self.head(tokens[:, 0])


class TupleOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(x)
        return y, y


def test_resolve_names_and_indices() -> None:
    net = tiny_cnn()
    assert resolve_hidden_layer(net, -1) is None
    assert resolve_hidden_layer(net, -2) == "flatten"
    assert resolve_hidden_layer(net, 0) == "conv"
    resnet = models.resnet18()
    assert resolve_hidden_layer(resnet, "layer4.1.conv2") == "layer4.1.conv2"
    assert resolve_hidden_layer(resnet, -2) == "avgpool"


def test_missing_layer_lists_available_names() -> None:
    with pytest.raises(ValueError, match=r"hidden_layer 'avgpool' not found.*closest: pool; "
                                         r"top-level children: conv, bn, relu, pool, flatten, fc; 6 module names"):
        resolve_hidden_layer(tiny_cnn(), "avgpool")
    with pytest.raises(ValueError, match=r"index 9 is out of range.*\['conv', 'bn'"):
        resolve_hidden_layer(tiny_cnn(), 9)
    with pytest.raises(TypeError, match="module name"):
        resolve_hidden_layer(tiny_cnn(), 1.5)  # type: ignore[arg-type]


def test_missing_layer_in_a_deep_network_shows_the_useful_names() -> None:
    # A ResNet has 67 module names; the pooling layer and the classifier come last.
    with pytest.raises(ValueError) as error:
        resolve_hidden_layer(models.resnet18(), "no_such_layer")
    message = str(error.value)
    assert "no similar name" in message and "67 module names in all" in message
    assert "top-level children: conv1, bn1, relu, maxpool, layer1, layer2, layer3, layer4, avgpool, fc;" in message
    assert "layer1.0.conv1" not in message  # no deep names that nobody asked for
    with pytest.raises(ValueError, match=r"closest: layer4\.1\.conv2, "):
        resolve_hidden_layer(models.resnet18(), "layer4.1.con2")
    with pytest.raises(ValueError, match=r"closest: avgpool, maxpool;"):
        resolve_hidden_layer(models.resnet18(), "avgpol")


def test_traced_encoder_skips_the_tail_and_matches_the_network() -> None:
    net = models.resnet18().eval()
    encoder = HiddenLayerEncoder(net, "avgpool")
    assert encoder.mode == "traced"
    own = {id(p) for p in encoder.parameters()}
    assert id(net.fc.weight) not in own and id(net.conv1.weight) in own  # shared, not copied
    x = torch.rand(2, 3, 32, 32)
    captured = {}
    handle = net.avgpool.register_forward_hook(lambda m, i, o: captured.setdefault("out", o))
    net(x)
    handle.remove()
    torch.testing.assert_close(encoder(x), captured["out"].flatten(1))


def test_hook_fallback_stops_early_and_leaves_no_hook() -> None:
    net = Branchy()
    encoder = HiddenLayerEncoder(net, "pool")
    assert encoder.mode == "hook"
    out = encoder(torch.rand(3, 3, 8, 8))
    assert out.shape == (3, 4)
    assert net.head_calls == 0  # the layers after the hidden one never ran
    for module in net.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


def test_hook_is_removed_when_the_forward_fails() -> None:
    encoder = HiddenLayerEncoder(Branchy(), "pool", trace=False)
    with pytest.raises(RuntimeError):
        encoder(torch.rand(2, 5, 8, 8))  # wrong channel count
    assert not encoder.net.pool._forward_hooks


@pytest.mark.parametrize(("token_pool", "expected"), [("cls", lambda t: t[:, 0]), ("mean", lambda t: t.mean(1))])
def test_token_outputs_are_pooled_not_flattened(token_pool: str, expected) -> None:
    net = Tokens()
    encoder = HiddenLayerEncoder(net, "mix", token_pool=token_pool)
    x = torch.rand(2, 3, 16, 16)
    tokens = net.embed(x).flatten(2).transpose(1, 2)
    out = encoder(x)
    assert out.shape == (2, 6)
    torch.testing.assert_close(out, expected(tokens))


def test_vision_transformer_encoder_gives_width_features() -> None:
    vit = models.VisionTransformer(image_size=16, patch_size=8, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16)
    encoder = HiddenLayerEncoder(vit, "encoder")
    assert encoder(torch.rand(2, 3, 16, 16)).shape == (2, 8)


def test_spatial_pooling_options() -> None:
    net = tiny_cnn()
    x = torch.rand(2, 3, 6, 6)
    feature_map = net.relu(net.bn(net.conv(x)))
    torch.testing.assert_close(HiddenLayerEncoder(net, "relu")(x), feature_map.mean((2, 3)))
    torch.testing.assert_close(HiddenLayerEncoder(net, "relu", spatial_pool="flatten")(x), feature_map.flatten(1))


def test_tuple_output_is_refused_clearly() -> None:
    encoder = HiddenLayerEncoder(TupleOut(), -1)
    with pytest.raises(TypeError, match="returned a tuple of 2 items; choose a layer"):
        encoder(torch.rand(2, 3, 8, 8))


def test_inferring_the_width_changes_nothing() -> None:
    net = models.resnet18()
    net.layer1.eval()  # a mixed train/eval state must survive
    before = state_copy(net)
    modes = [m.training for m in net.modules()]
    assert infer_output_dim(HiddenLayerEncoder(net, "avgpool"), 3, (32, 32)) == 512
    assert_same_state(before, state_copy(net))
    assert modes == [m.training for m in net.modules()]


def test_a_network_that_runs_only_at_its_own_size_raises_an_image_size_error() -> None:
    from byol_pytorch import BYOL
    from byol_pytorch.errors import ImageSizeError

    # Built for 224x224 inputs: the classifier's width fixes the size.
    fixed = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 224 * 224, 4))
    with pytest.raises(ImageSizeError, match="cannot run on 32x32 images, though it runs on 224x224") as caught:
        BYOL(fixed, 32, hidden_layer=-1, projection_hidden_size=8)
    assert caught.value.image_size == (32, 32)
    assert BYOL(fixed, 224, hidden_layer=-1, projection_hidden_size=8).representation_dim == 4


def test_a_network_that_fails_at_every_size_keeps_its_own_error() -> None:
    from byol_pytorch import BYOL

    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("a bug in the network")

    with pytest.raises(RuntimeError, match="a bug in the network"):
        BYOL(Broken(), 32, hidden_layer=-1, projection_hidden_size=8)
