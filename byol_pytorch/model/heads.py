"""The projector and predictor MLPs of BYOL and SimSiam."""

from __future__ import annotations

from torch import nn


class MLPHead(nn.Sequential):
    """BYOL's projector and predictor: Linear -> BatchNorm -> ReLU -> Linear.

    Args:
        input_dim: features in.
        output_dim: features out (256 in the paper).
        hidden_dim: width of the hidden layer (4096 in the paper).

    Shape:
        ``(B, input_dim)`` -> ``(B, output_dim)``.
    """

    def __init__(self, input_dim: int, output_dim: int = 256, hidden_dim: int = 4096) -> None:
        for name, value in (("input_dim", input_dim), ("output_dim", output_dim), ("hidden_dim", hidden_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        super().__init__(
            nn.Linear(input_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, output_dim),
        )


class SimSiamProjector(nn.Sequential):
    """SimSiam's projector: three linear layers, each followed by batch norm.

    The last batch norm has no affine parameters, as in Chen & He (2020).

    Args:
        input_dim: features in.
        output_dim: features out (2048 in the SimSiam paper).
        hidden_dim: width of the two hidden layers (2048 in the paper).
    """

    def __init__(self, input_dim: int, output_dim: int = 2048, hidden_dim: int = 2048) -> None:
        super().__init__(
            nn.Linear(input_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, output_dim, bias=False),
            nn.BatchNorm1d(output_dim, affine=False),
        )


def simsiam_predictor(dim: int, bottleneck_dim: int | None = None) -> MLPHead:
    """SimSiam's bottleneck predictor ``dim -> dim // 4 -> dim`` (2048 -> 512 -> 2048)."""
    return MLPHead(dim, dim, bottleneck_dim or max(dim // 4, 1))
