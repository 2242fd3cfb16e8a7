"""BYOL's regression loss between predictions and target projections."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def normalized_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``2 - 2 cos(p, z)`` per sample: the squared distance of the l2-normalised vectors.

    Computed in float32 even under autocast, where the normalisation of
    low-precision vectors would lose most of the signal.

    Args:
        prediction: ``(B, D)``.
        target: ``(B, D)``.

    Returns:
        ``(B,)`` losses in ``[0, 4]``.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    p = F.normalize(prediction.float(), dim=-1)
    z = F.normalize(target.float(), dim=-1)
    return 2 - 2 * (p * z).sum(dim=-1)


def byol_loss(
    prediction_1: torch.Tensor,
    prediction_2: torch.Tensor,
    target_1: torch.Tensor,
    target_2: torch.Tensor,
) -> torch.Tensor:
    """The symmetric BYOL loss.

    Each view's prediction regresses the other view's target; the two terms are
    summed (as in the paper: averaging them would halve the gradient) and the
    sum is averaged over the batch.

    Args:
        prediction_1: online predictions of view 1, ``(B, D)``.
        prediction_2: online predictions of view 2, ``(B, D)``.
        target_1: target projections of view 1, ``(B, D)`` (no gradient).
        target_2: target projections of view 2, ``(B, D)`` (no gradient).

    Returns:
        A scalar in ``[0, 8]``.
    """
    return (normalized_mse(prediction_1, target_2.detach()) + normalized_mse(prediction_2, target_1.detach())).mean()
