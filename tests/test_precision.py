"""Convolutions on degenerate maps run in float32 under autocast (model/precision.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from byol_pytorch import BYOL
from byol_pytorch.model.precision import degenerate_convs_in_fp32, is_degenerate_conv

CPU_BF16 = {"device_type": "cpu", "dtype": torch.bfloat16}


@pytest.mark.parametrize(
    ("spatial", "kernel", "stride", "expected"),
    [
        ((1, 1), (3, 3), 2, True),   # the reproduction: ResNet-18's layer4.0.conv1 at 16 px
        ((1, 1), (3, 3), 1, True),   # only the centre tap sees data
        ((2, 1), (3, 3), 2, True),
        ((2, 2), (3, 3), 3, True),
        ((4, 4), (3, 3), 2, False),
        ((2, 2), (3, 3), 2, True),   # smaller than the kernel: kept in fp32 to be safe
        ((1, 1), (1, 1), 2, False),  # 1x1 kernels have no padded taps
        ((8, 8), (7, 7), 2, False),
    ],
)
def test_degenerate_shapes(spatial, kernel, stride, expected) -> None:
    assert is_degenerate_conv((4, 16, *spatial), (32, 16, *kernel), stride) is expected


@pytest.mark.parametrize("seed", range(5))
def test_strided_conv_on_a_1x1_map_gets_float32_gradients(seed: int) -> None:
    # torch 2.14.1's bf16 CPU backward gave NaN or ~1e33 in this weight gradient in 4 of 5 seeds.
    generator = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(256, 512, 3, stride=2, padding=1)
    reference = nn.Conv2d(256, 512, 3, stride=2, padding=1)
    reference.load_state_dict(conv.state_dict())
    x = torch.randn(32, 256, 1, 1, generator=generator)
    with torch.autocast(**CPU_BF16), degenerate_convs_in_fp32("cpu"):
        out = conv(x)
    assert out.dtype == torch.float32
    out.sum().backward()
    reference(x).sum().backward()
    torch.testing.assert_close(conv.weight.grad, reference.weight.grad)
    torch.testing.assert_close(conv.bias.grad, reference.bias.grad)


def test_other_convolutions_keep_the_autocast_dtype() -> None:
    conv = nn.Conv2d(8, 8, 3, stride=2, padding=1)
    with torch.autocast(**CPU_BF16), degenerate_convs_in_fp32("cpu"):
        assert conv(torch.randn(2, 8, 8, 8)).dtype == torch.bfloat16
        assert nn.functional.conv2d(torch.randn(2, 8, 1, 1), conv.weight, stride=2, padding=1).dtype == torch.float32


def test_the_guard_is_inactive_without_autocast() -> None:
    conv = nn.Conv2d(8, 8, 3, stride=2, padding=1).double()
    with degenerate_convs_in_fp32("cpu"):
        assert conv(torch.randn(2, 8, 1, 1, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("seed", range(3))
def test_resnet18_at_16_px_gets_exact_zero_gradients_on_padded_taps_in_bf16(seed: int) -> None:
    # At 16 px layer4.0.conv1 (3x3, stride 2) sees a 1x1 map: only its centre tap touches data, so
    # every other tap's gradient is exactly zero. The bf16 kernel filled them with NaN or ~1e30.
    torch.manual_seed(seed)
    net = resnet18()
    learner = BYOL(net, 16, hidden_layer="avgpool", projection_size=16, projection_hidden_size=32)
    with torch.autocast(**CPU_BF16):
        loss = learner(torch.rand(8, 3, 16, 16))
    loss.backward()
    grad = net.layer4[0].conv1.weight.grad
    off_centre = torch.ones(3, 3, dtype=torch.bool)
    off_centre[1, 1] = False
    assert torch.count_nonzero(grad[:, :, off_centre]) == 0
    assert grad[:, :, 1, 1].abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


def test_the_encoder_keeps_the_guard_only_for_input_sizes_that_need_it() -> None:
    from byol_pytorch.model.encoder import HiddenLayerEncoder

    encoder = HiddenLayerEncoder(resnet18(), "avgpool")
    with torch.autocast(**CPU_BF16):
        for side in (16, 224, 16, 224):
            encoder(torch.rand(2, 3, side, side))
    # At 16 px layer4 sees 1x1 maps; at 224 px no map is smaller than 7x7.
    assert encoder._needs_fp32_convs == {("cpu", (16, 16)): True, ("cpu", (224, 224)): False}
    net = resnet18()
    learner = BYOL(net, 16, hidden_layer="avgpool", projection_size=16, projection_hidden_size=32)
    for _ in range(2):  # the second pass runs with the recorded decision and is still guarded
        learner.zero_grad(set_to_none=True)
        with torch.autocast(**CPU_BF16):
            learner(torch.rand(8, 3, 16, 16)).backward()
        grad = net.layer4[0].conv1.weight.grad
        assert torch.count_nonzero(grad[:, :, [0, 0, 2, 2], [0, 2, 0, 2]]) == 0
