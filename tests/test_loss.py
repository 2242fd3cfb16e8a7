from __future__ import annotations

import pytest
import torch

from byol_pytorch.model.heads import MLPHead, SimSiamProjector, simsiam_predictor
from byol_pytorch.model.loss import byol_loss, normalized_mse


def test_normalized_mse_on_known_vectors() -> None:
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0], [3.0, 0.0], [1.0, 1.0]])
    z = torch.tensor([[0.0, 2.0], [5.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    expected = torch.tensor([2.0, 0.0, 4.0, 2 - 2 / 2**0.5])
    torch.testing.assert_close(normalized_mse(p, z), expected)


def test_byol_loss_sums_both_directions_and_averages_the_batch() -> None:
    p1, p2, z1, z2 = (torch.randn(5, 7) for _ in range(4))
    expected = (normalized_mse(p1, z2) + normalized_mse(p2, z1)).mean()
    torch.testing.assert_close(byol_loss(p1, p2, z1, z2), expected)
    # Swapping the views changes nothing.
    torch.testing.assert_close(byol_loss(p2, p1, z2, z1), expected)
    # Perfect predictions give zero; opposite ones the maximum of 8 (4 per direction).
    assert byol_loss(z2, z1, z1, z2).item() == pytest.approx(0.0, abs=1e-6)
    assert byol_loss(-z2, -z1, z1, z2).item() == pytest.approx(8.0, abs=1e-5)


def test_loss_gives_no_gradient_to_targets() -> None:
    p1, p2 = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    z1, z2 = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    byol_loss(p1, p2, z1, z2).backward()
    assert p1.grad is not None and z1.grad is None and z2.grad is None


def test_loss_is_float32_under_bf16() -> None:
    p = torch.randn(4, 8).bfloat16()
    assert normalized_mse(p, p).dtype == torch.float32


def test_shape_mismatch_is_named() -> None:
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        normalized_mse(torch.randn(2, 3), torch.randn(2, 4))


def test_heads_have_the_papers_shape() -> None:
    head = MLPHead(32, 16, 64)
    assert [type(m).__name__ for m in head] == ["Linear", "HeadBatchNorm", "ReLU", "Linear"]
    assert isinstance(head[1], torch.nn.BatchNorm1d)  # a BatchNorm1d that can sync across processes
    assert [type(m).__name__ for m in MLPHead(32, 16, 64, sync_batchnorm=False)][1] == "BatchNorm1d"
    assert head(torch.randn(4, 32)).shape == (4, 16)
    projector = SimSiamProjector(32, 24, 48)
    assert projector[-1].affine is False and projector(torch.randn(4, 32)).shape == (4, 24)
    predictor = simsiam_predictor(2048)
    assert predictor[0].out_features == 512  # the paper's 2048 -> 512 -> 2048 bottleneck
    with pytest.raises(ValueError, match="hidden_dim must be a positive integer, got 0"):
        MLPHead(4, 4, 0)
