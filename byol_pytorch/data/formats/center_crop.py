"""The standard evaluation transform: shorter side to ``size x 256/224``, then the centre ``size`` crop.

Deterministic, so that evaluation, embedding and the kNN monitor see the same
pixels of an image every time. At 224 px the shorter side becomes 256 and the
centre 224 x 224 is kept, as in the published evaluations of BYOL and its peers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# How much larger than the output the shorter side is resized before the centre crop.
EVAL_RESIZE = 256 / 224


def resize_and_center_crop(image: torch.Tensor, size: tuple[int, int], resize_ratio: float = EVAL_RESIZE) -> torch.Tensor:
    """Scales a ``(C, H, W)`` image so it covers ``size x resize_ratio``, then crops the centre ``size``.

    Args:
        image: uint8 (scaled by 1/255) or float in [0, 1].
        size: output ``(height, width)``.
        resize_ratio: at least 1; 1 crops the largest centred region.

    Returns:
        A float32 ``(C, *size)`` tensor in [0, 1].
    """
    if image.dtype == torch.uint8:
        image = image.to(torch.float32) / 255.0
    target_h, target_w = size
    height, width = image.shape[-2:]
    # Scale by the larger ratio so both sides cover the target; for a square
    # target this is "shorter side to image_size x resize_ratio".
    scale = max(target_h / height, target_w / width) * resize_ratio
    new_h = max(target_h, round(height * scale))
    new_w = max(target_w, round(width * scale))
    if (new_h, new_w) != (height, width):
        image = F.interpolate(image.unsqueeze(0), size=(new_h, new_w), mode="bilinear", align_corners=False,
                              antialias=True).squeeze(0)
    top = (new_h - target_h) // 2
    left = (new_w - target_w) // 2
    return image[:, top : top + target_h, left : left + target_w].clamp_(0.0, 1.0).contiguous()
