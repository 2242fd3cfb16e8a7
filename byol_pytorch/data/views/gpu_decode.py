"""JPEG decoding on the device, in batches: the loader sends the file's bytes and the crops it drew.

With ``LoaderCrops(..., encoded_jpegs=True)`` a worker reads only a JPEG's
header (its size and EXIF orientation), draws both views' crops and flips as
usual and hands on the compressed bytes. :func:`decode_views` then decodes the
whole batch with ``torchvision.io.decode_jpeg(device=...)`` (nvJPEG on CUDA)
and cuts, resizes and flips the views there. Files that are not 8-bit RGB or
grayscale JPEGs (PNG, CMYK, ...) are decoded and cropped in the worker as
without the option, and travel as uint8 beside the encoded ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_jpeg

from .crops import CroppedViews, EncodedViews

_LOG = logging.getLogger(__name__)


class EncodedBatch(NamedTuple):
    """A batch some of whose images still need decoding; :func:`decode_views` finishes it.

    Attributes:
        data: the encoded files, one uint8 tensor each.
        boxes: ``(E, 2, 5)`` float, the encoded files' crops.
        ready: the views the workers already made, ``(R, 3, H, W)`` uint8 each, or ``None``.
        encoded_positions: where in the batch each encoded file goes, ``(E,)`` long.
    """

    data: list[torch.Tensor]
    boxes: torch.Tensor
    ready: CroppedViews | None
    encoded_positions: torch.Tensor


def collate_encoded(items: Sequence[CroppedViews | EncodedViews | tuple]) -> EncodedBatch:
    """Batches a mix of encoded JPEGs and ready views, labels dropped; order is kept through positions."""
    if len(items) == 0:
        raise ValueError("collate_encoded got an empty list of items; expected at least one")
    items = [item[0] if isinstance(item, tuple) and not isinstance(item, (CroppedViews, EncodedViews)) else item
             for item in items]
    encoded = [(i, item) for i, item in enumerate(items) if isinstance(item, EncodedViews)]
    ready = [item for item in items if isinstance(item, CroppedViews)]
    if len(encoded) + len(ready) != len(items):
        raise TypeError("collate_encoded expects EncodedViews or CroppedViews items")
    return EncodedBatch(
        data=[item.data for _, item in encoded],
        boxes=torch.stack([item.boxes for _, item in encoded]) if encoded else torch.zeros(0, 2, 5),
        ready=CroppedViews(torch.stack([r.view_1 for r in ready]), torch.stack([r.view_2 for r in ready]))
        if ready else None,
        encoded_positions=torch.tensor([i for i, _ in encoded], dtype=torch.long),
    )


def _render(image: torch.Tensor, box: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """One view of a decoded ``(3, H, W)`` uint8 image: crop, bicubic resize (antialiased), flip; uint8."""
    top, left, height, width = (round(v) for v in box[:4].tolist())
    region = image[:, top : top + height, left : left + width].unsqueeze(0).float()
    view = F.interpolate(region, size=size, mode="bicubic", align_corners=False, antialias=True)[0]
    if box[4] > 0.5:
        view = view.flip(-1)
    return view.clamp_(0, 255).round_().to(torch.uint8)


def _decode_all(data: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """Decodes every file on ``device``; a batch that fails is retried file by file (failures give None)."""
    if device.type == "cuda":
        # nvJPEG writes its outputs without waiting for the work queued on the caller's stream, and
        # the caching allocator hands the decoder blocks freed there that queued kernels still read
        # (pytorch/vision#9606). In training, the previous step's tensors came back overwritten and
        # the loss turned NaN within five steps; so the queued work finishes first.
        torch.cuda.current_stream(device).synchronize()
    try:
        return list(decode_jpeg(data, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True))
    except RuntimeError:
        decoded: list[torch.Tensor | None] = []
        for index, one in enumerate(data):
            try:
                decoded.append(decode_jpeg(one, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True))
            except RuntimeError as error:
                _LOG.warning("could not decode image %d of the batch on %s: %s", index, device, error)
                decoded.append(None)
        return decoded


def decode_views(batch: EncodedBatch, size: tuple[int, int], device: torch.device | str) -> CroppedViews:
    """Decodes a batch's JPEGs on ``device`` and makes its views there, in the batch's order.

    Args:
        batch: what :func:`collate_encoded` made (its tensors may already be on ``device``).
        size: the views' ``(height, width)``.
        device: where to decode, e.g. ``"cuda"`` (nvJPEG) or ``"cpu"``.

    Returns:
        ``CroppedViews`` of two ``(B, 3, *size)`` uint8 tensors on ``device``. A
        file that fails to decode takes the views of another image of the
        batch (reported on the logger ``byol_pytorch.data.views.gpu_decode``).
    """
    device = torch.device(device)
    count = len(batch.data) + (0 if batch.ready is None else batch.ready.view_1.shape[0])
    views = [torch.empty(count, 3, *size, dtype=torch.uint8, device=device) for _ in range(2)]
    positions = batch.encoded_positions.tolist()
    taken = torch.ones(count, dtype=torch.bool)
    taken[positions] = False
    if batch.ready is not None:
        for view, ready in zip(views, batch.ready):
            view[taken.to(device)] = ready.to(device, non_blocking=True)
    failed = []
    decoded = _decode_all([d.cpu() if device.type == "cuda" else d for d in batch.data], device) if positions else []
    for position, image, boxes in zip(positions, decoded, batch.boxes):
        if image is None:
            failed.append(position)
            continue
        for view, box in zip(views, boxes):
            view[position] = _render(image, box, size)
    if failed:
        good = [i for i in range(count) if i not in failed]
        if not good:
            raise RuntimeError(f"none of the {count} images of the batch could be decoded on {device}")
        for n, position in enumerate(failed):
            for view in views:
                view[position] = view[good[n % len(good)]]
    return CroppedViews(*views)
