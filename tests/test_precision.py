"""Convolutions on maps of a pixel or a few: products for one pixel, float32 under autocast (model/precision.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from byol_pytorch import BYOL
from byol_pytorch.model.precision import is_degenerate_conv, single_tap, small_map_convolutions

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


@pytest.mark.parametrize(
    ("spatial", "kernel", "stride", "padding", "dilation", "expected"),
    [
        ((1, 1), (3, 3), 1, 1, 1, (1, 1)),   # ResNet's 3x3 convolutions on a 1x1 map: the centre tap
        ((1, 1), (3, 3), 2, 1, 1, (1, 1)),   # layer4.0.conv1 at 16 px
        ((1, 1), (5, 3), 1, (2, 1), 1, (2, 1)),
        ((1, 1), (3, 3), 1, 2, 2, (1, 1)),   # dilated: the tap 2 pixels from the edge
        ((1, 1), (3, 3), 1, 0, 1, None),     # no padding: the output would be empty
        ((1, 1), (1, 1), 1, 1, 1, None),     # three output pixels per side
        ((1, 1), (1, 1), 1, 0, 1, None),     # a 1x1 kernel already is the product
        ((2, 2), (3, 3), 2, 1, 1, None),     # several taps meet a 2x2 input
        ((1, 1), (3, 3), 1, "same", 1, None),
    ],
)
def test_single_tap(spatial, kernel, stride, padding, dilation, expected) -> None:
    assert single_tap((4, 16, *spatial), (32, 16, *kernel), stride, padding, dilation) == expected


@pytest.mark.parametrize("autocast", [False, True])
@pytest.mark.parametrize(("stride", "groups"), [(1, 1), (2, 1), (1, 4)])
def test_a_one_pixel_convolution_equals_the_kernels(autocast: bool, stride: int, groups: int) -> None:
    generator = torch.Generator().manual_seed(stride + groups)
    conv = nn.Conv2d(64, 96, 3, stride=stride, padding=1, groups=groups)
    reference = nn.Conv2d(64, 96, 3, stride=stride, padding=1, groups=groups)
    reference.load_state_dict(conv.state_dict())
    x = torch.randn(16, 64, 1, 1, generator=generator)
    with torch.autocast("cpu", torch.bfloat16, enabled=autocast), small_map_convolutions("cpu"):
        out = conv(x)
    expected = reference(x)
    assert out.shape == expected.shape == (16, 96, 1, 1)
    assert out.dtype == (torch.bfloat16 if autocast else torch.float32)
    grad_out = torch.randn(expected.shape, generator=generator)
    out.float().backward(grad_out)
    expected.backward(grad_out)
    off_centre = torch.ones(3, 3, dtype=torch.bool)
    off_centre[1, 1] = False
    assert torch.count_nonzero(conv.weight.grad[:, :, off_centre]) == 0
    pairs = ((out.float(), expected), (conv.weight.grad, reference.weight.grad), (conv.bias.grad, reference.bias.grad))
    for found, wanted in pairs:
        if autocast:  # bf16 keeps 8 bits of mantissa: the error relative to the whole tensor
            assert (found - wanted).norm() / wanted.norm() < 0.01
        else:
            torch.testing.assert_close(found, wanted, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_strided_conv_on_a_2x1_map_gets_float32_gradients(seed: int) -> None:
    # torch 2.14.1's bf16 CPU backward gave NaN or ~1e33 in such weight gradients (on a 1x1 map in 4 of 5 seeds).
    generator = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(256, 512, 3, stride=2, padding=1)
    reference = nn.Conv2d(256, 512, 3, stride=2, padding=1)
    reference.load_state_dict(conv.state_dict())
    x = torch.randn(32, 256, 2, 1, generator=generator)
    with torch.autocast(**CPU_BF16), small_map_convolutions("cpu"):
        out = conv(x)
    assert out.dtype == torch.float32
    out.sum().backward()
    reference(x).sum().backward()
    torch.testing.assert_close(conv.weight.grad, reference.weight.grad)
    torch.testing.assert_close(conv.bias.grad, reference.bias.grad)


def test_other_convolutions_keep_the_autocast_dtype() -> None:
    conv = nn.Conv2d(8, 8, 3, stride=2, padding=1)
    with torch.autocast(**CPU_BF16), small_map_convolutions("cpu"):
        assert conv(torch.randn(2, 8, 8, 8)).dtype == torch.bfloat16
        assert nn.functional.conv2d(torch.randn(2, 8, 2, 2), conv.weight, stride=2, padding=1).dtype == torch.float32


def test_the_float32_guard_is_inactive_without_autocast() -> None:
    conv = nn.Conv2d(8, 8, 3, stride=2, padding=1).double()
    with small_map_convolutions("cpu"):
        assert conv(torch.randn(2, 8, 2, 2, dtype=torch.float64)).dtype == torch.float64


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
    assert encoder._small_map_convs == {(("cpu", (16, 16)), True): True, (("cpu", (224, 224)), True): False}
    net = resnet18()
    learner = BYOL(net, 16, hidden_layer="avgpool", projection_size=16, projection_hidden_size=32)
    for _ in range(2):  # the second pass runs with the recorded decision and is still guarded
        learner.zero_grad(set_to_none=True)
        with torch.autocast(**CPU_BF16):
            learner(torch.rand(8, 3, 16, 16)).backward()
        grad = net.layer4[0].conv1.weight.grad
        assert torch.count_nonzero(grad[:, :, [0, 0, 2, 2], [0, 2, 0, 2]]) == 0
