"""Image datasets and the glue that turns dataset items into training batches.

BYOL only needs images: labels are optional and only used for evaluation. This
module provides

* :func:`to_image_tensor` and :func:`collate_images`, which accept the item
  formats people actually have (tensors, PIL images, numpy arrays, and
  ``(image, label)`` pairs from labelled datasets) and produce a float32
  ``(B, C, H, W)`` batch in ``[0, 1]``;
* :class:`MockDataset`, deterministic random images for tests and smoke runs;
* :class:`ImageFolderDataset`, every image under a folder, resized to one size,
  robust to corrupt files so that one bad JPEG never ends a long run;
* :class:`DigitsDataset`, scikit-learn's bundled 8x8 handwritten digits, a real
  labelled image set that needs no download.

Nothing here imports ``accelerate``; the module only depends on torch,
torchvision, PIL, numpy and scikit-learn.
"""

from __future__ import annotations

import operator
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch.utils.data import Dataset
from torchvision.transforms.functional import pil_to_tensor

__all__ = [
    "IMAGE_EXTENSIONS",
    "DigitsDataset",
    "ImageFolderDataset",
    "MockDataset",
    "SkippedImageWarning",
    "collate_images",
    "to_image_tensor",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
    ".gif",
    ".ppm",
    ".pgm",
)

ImageSize = int | tuple[int, int]
Split = Literal["train", "test", "all"]

# PIL modes that keep their channel layout; everything else becomes RGB.
_KEPT_PIL_MODES = ("L", "RGB", "RGBA")
# Converting these to RGB would clip values above 255, so they are scaled to
# [0, 1] as single-channel images instead.
_SIXTEEN_BIT_PIL_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")

# How many distinct shapes a collate error lists before it stops; a dataset of
# unresized photos can have hundreds and the message must stay readable.
_MAX_SHAPES_IN_MESSAGE = 5


class SkippedImageWarning(UserWarning):
    """Warns that an image file could not be decoded and was skipped."""


# Files already reported in this process. Module-level rather than per dataset
# so that re-creating a dataset (a new epoch, a validation copy) does not
# repeat the warning for the same file.
_WARNED_FILES: set[str] = set()


def _parse_size(image_size: Any, name: str = "image_size") -> tuple[int, int]:
    """Normalises an int or ``(h, w)`` pair to a validated ``(h, w)`` tuple."""
    if isinstance(image_size, bool):
        raise TypeError(f"{name} must be an int or an (h, w) pair, got {image_size!r}")
    if isinstance(image_size, (int, np.integer)):
        size = (int(image_size), int(image_size))
    elif isinstance(image_size, Sequence) and not isinstance(image_size, str):
        if len(image_size) != 2 or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in image_size
        ):
            raise TypeError(
                f"{name} must be an int or an (h, w) pair of ints, got {image_size!r}"
            )
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise TypeError(
            f"{name} must be an int or an (h, w) pair of ints, got {image_size!r} "
            f"of type {type(image_size).__name__}"
        )
    if size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"{name} must be positive, got {image_size!r}")
    return size


def _warn_if_outside_unit_range(image: torch.Tensor, source: str) -> None:
    """Warns when a float image is not in [0, 1]; it is then probably normalised."""
    if image.numel() == 0:
        return
    low, high = torch.aminmax(image)
    # A little slack: resampling and colour conversion can overshoot by rounding.
    if low.item() < -1e-3 or high.item() > 1 + 1e-3:
        warnings.warn(
            f"{source} has values in [{low.item():.3g}, {high.item():.3g}], expected "
            f"[0, 1]; it is used as is. If it is already normalised or in 0..255, "
            f"augmentations that assume [0, 1] will misbehave",
            stacklevel=3,
        )


def _tensor_to_image(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.ndim == 2:
        tensor = tensor.unsqueeze(0)
    elif tensor.ndim != 3:
        raise ValueError(
            f"an image tensor must have shape (C, H, W) or (H, W), got shape "
            f"{tuple(tensor.shape)}"
        )
    elif tensor.shape[0] not in (1, 3, 4) and tensor.shape[-1] in (1, 3, 4):
        warnings.warn(
            f"image tensor of shape {tuple(tensor.shape)} looks channels-last (H, W, C); "
            f"tensors are read as (C, H, W), so permute it first",
            stacklevel=3,
        )
    if tensor.dtype == torch.uint8:
        return tensor.to(torch.float32) / 255.0
    if tensor.dtype == torch.bool:
        return tensor.to(torch.float32)
    if tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
        _warn_if_outside_unit_range(tensor, "float image tensor")
        return tensor
    raise TypeError(
        f"image tensors must be uint8, bool or floating point, got dtype {tensor.dtype}"
    )


def _numpy_to_image(array: np.ndarray) -> torch.Tensor:
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim != 3:
        raise ValueError(
            f"an image array must have shape (H, W) or (H, W, C), got shape {array.shape}"
        )
    elif array.shape[-1] not in (1, 3, 4) and array.shape[0] in (1, 3, 4):
        warnings.warn(
            f"image array of shape {array.shape} looks channels-first (C, H, W); numpy "
            f"arrays are read as (H, W, C), so transpose it first",
            stacklevel=3,
        )
    if array.dtype == np.uint8:
        scaled = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        scaled = array.astype(np.float32) / 65535.0
    elif array.dtype == np.bool_:
        scaled = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.floating):
        scaled = array.astype(np.float32)
    else:
        raise TypeError(
            f"image arrays must be uint8, uint16, bool or floating point, got dtype "
            f"{array.dtype}"
        )
    # astype always copies, so the tensor never aliases the caller's array.
    image = torch.from_numpy(scaled).permute(2, 0, 1).contiguous()
    if np.issubdtype(array.dtype, np.floating):
        _warn_if_outside_unit_range(image, "float image array")
    return image


def _pil_to_image(image: Image.Image) -> torch.Tensor:
    mode = image.mode
    if mode in _SIXTEEN_BIT_PIL_MODES:
        values = np.asarray(image, dtype=np.float32) / 65535.0
        return torch.from_numpy(np.clip(values, 0.0, 1.0)).unsqueeze(0).contiguous()
    if mode == "F":
        image_tensor = torch.from_numpy(np.array(image, dtype=np.float32)).unsqueeze(0)
        _warn_if_outside_unit_range(image_tensor, "float ('F' mode) PIL image")
        return image_tensor
    if mode not in _KEPT_PIL_MODES:
        if mode == "P" and "transparency" in image.info:
            # PIL warns when palette transparency is dropped by a direct RGB
            # conversion; going through RGBA drops it silently and identically.
            image = image.convert("RGBA")
        image = image.convert("RGB")
    return pil_to_tensor(image).to(torch.float32) / 255.0


def to_image_tensor(item: Any) -> torch.Tensor:
    """Converts one dataset item to a float32 image tensor.

    Args:
        item: one of

            * a torch tensor of shape ``(C, H, W)`` or ``(H, W)``: floating point
              values are kept as they are, ``uint8`` is divided by 255, ``bool``
              becomes 0/1;
            * a PIL image: modes ``L`` (1 channel), ``RGB`` and ``RGBA`` (4
              channels) keep their channels, 16-bit grayscale (``I;16``, ``I``)
              is divided by 65535 and stays 1 channel, ``F`` is kept as is,
              every other mode (palette, ``LA``, ``CMYK``, ``1``...) becomes RGB;
            * a numpy array of shape ``(H, W)`` or ``(H, W, C)``: ``uint8`` is
              divided by 255, ``uint16`` by 65535, floating point kept as is;
            * a tuple or list whose first element is one of the above, such as
              the ``(image, label)`` pairs of labelled datasets. The rest is
              ignored.

    Returns:
        A float32 tensor of shape ``(C, H, W)``, in ``[0, 1]`` for integer
        inputs. Float inputs are not rescaled; a warning is emitted when they
        fall outside ``[0, 1]``.

    Raises:
        TypeError: the item, or its dtype, is not one of the supported kinds.
        ValueError: the item has the wrong number of dimensions.
    """
    if isinstance(item, (tuple, list)):
        if len(item) == 0:
            raise ValueError("got an empty tuple/list where an image or (image, label) was expected")
        item = item[0]
        if isinstance(item, (tuple, list)):
            raise TypeError(
                f"expected an image or an (image, label) pair, got a nested "
                f"{type(item).__name__} as the first element"
            )
    if isinstance(item, torch.Tensor):
        return _tensor_to_image(item)
    if isinstance(item, Image.Image):
        return _pil_to_image(item)
    if isinstance(item, np.ndarray):
        return _numpy_to_image(item)
    raise TypeError(
        f"cannot turn an item of type {type(item).__module__}.{type(item).__qualname__} "
        f"into an image; expected a torch.Tensor, PIL.Image.Image, numpy.ndarray or "
        f"an (image, label) tuple"
    )


def collate_images(items: Sequence[Any]) -> torch.Tensor:
    """Stacks dataset items into one image batch, dropping any labels.

    Meant as the ``collate_fn`` of a ``DataLoader`` for BYOL training.

    Args:
        items: dataset items, each accepted by :func:`to_image_tensor`.

    Returns:
        A float32 tensor of shape ``(B, C, H, W)``.

    Raises:
        ValueError: ``items`` is empty, or the images do not all have the same
            shape.
    """
    if len(items) == 0:
        raise ValueError("collate_images got an empty list of items; expected at least one")
    images = [to_image_tensor(item) for item in items]
    shapes = sorted({tuple(image.shape) for image in images})
    if len(shapes) > 1:
        shown = ", ".join(str(shape) for shape in shapes[:_MAX_SHAPES_IN_MESSAGE])
        if len(shapes) > _MAX_SHAPES_IN_MESSAGE:
            shown += f" and {len(shapes) - _MAX_SHAPES_IN_MESSAGE} more"
        raise ValueError(
            f"cannot batch images of different shapes (C, H, W): saw {shown}. The dataset "
            f"must return images of one size; resize them in the dataset (for example "
            f"ImageFolderDataset(root, image_size=...) resizes every image)"
        )
    return torch.stack(images)


class MockDataset(Dataset):
    """Random images, the same ones on every run.

    Item ``i`` is drawn from a generator seeded with ``seed + i``, so it does not
    depend on access order, on other items or on the DataLoader worker that
    loads it.

    Args:
        image_size: ``H == W`` as an int, or an ``(h, w)`` pair.
        length: number of items.
        channels: channels per image.
        seed: base seed.
    """

    def __init__(
        self, image_size: ImageSize, length: int, channels: int = 3, seed: int = 0
    ) -> None:
        self.image_size = _parse_size(image_size)
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length <= 0:
            raise ValueError(f"length must be a positive int, got {length!r}")
        if (
            isinstance(channels, bool)
            or not isinstance(channels, (int, np.integer))
            or channels <= 0
        ):
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        self.length = int(length)
        self.channels = int(channels)
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        """Returns image ``index``, float32 of shape ``(channels, h, w)`` in ``[0, 1)``."""
        index = _check_index(index, self.length)
        generator = torch.Generator().manual_seed(self.seed + index)
        return torch.rand((self.channels, *self.image_size), generator=generator)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(image_size={self.image_size}, length={self.length}, "
            f"channels={self.channels}, seed={self.seed})"
        )


def _check_index(index: Any, length: int) -> int:
    """Turns ``index`` into a non-negative int below ``length`` (negatives count back)."""
    try:
        position = operator.index(index)
    except TypeError:
        raise TypeError(
            f"dataset index must be an integer, got {index!r} of type {type(index).__name__}"
        ) from None
    if not -length <= position < length:
        raise IndexError(f"index {position} is out of range for a dataset of length {length}")
    return position % length


def _normalise_extensions(extensions: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(extensions, str):
        extensions = (extensions,)
    normalised = []
    for extension in extensions:
        if not isinstance(extension, str) or not extension.strip("."):
            raise ValueError(
                f"extensions must be non-empty strings such as '.png', got {extension!r}"
            )
        extension = extension.lower()
        normalised.append(extension if extension.startswith(".") else f".{extension}")
    if not normalised:
        raise ValueError("extensions is empty; expected at least one, such as '.png'")
    return tuple(dict.fromkeys(normalised))


def _resize_and_center_crop(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Scales ``(C, H, W)`` so it covers ``size``, then crops the middle."""
    target_h, target_w = size
    height, width = image.shape[-2:]
    # Scale by the larger ratio so both sides cover the target; for a square
    # target this is "shorter side to image_size".
    scale = max(target_h / height, target_w / width)
    new_h = max(target_h, round(height * scale))
    new_w = max(target_w, round(width * scale))
    if (new_h, new_w) != (height, width):
        image = F.interpolate(
            image.unsqueeze(0),
            size=(new_h, new_w),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        ).squeeze(0)
    top = (new_h - target_h) // 2
    left = (new_w - target_w) // 2
    image = image[:, top : top + target_h, left : left + target_w]
    return image.clamp_(0.0, 1.0).contiguous()


def _to_rgb(image: torch.Tensor) -> torch.Tensor:
    """Makes a ``(C, H, W)`` tensor with 1, 3 or 4 channels into RGB."""
    channels = image.shape[0]
    if channels == 1:
        return image.expand(3, -1, -1)
    if channels == 4:
        # Drop alpha: the colour values are what the network should see.
        return image[:3]
    return image


class ImageFolderDataset(Dataset):
    """Every image file under a folder, as RGB tensors of one size.

    Files are found recursively and sorted by path, so the order is the same
    on every machine. Nothing is decoded at construction; a corrupt or
    unreadable file is discovered when it is first loaded, reported once with
    a :class:`SkippedImageWarning`, recorded in :attr:`skipped_files`, and
    replaced by the next readable file (``index + 1``, wrapping around).

    Note:
        With ``DataLoader(num_workers > 0)`` files are decoded in the worker
        processes, so :attr:`skipped_files` of the dataset object in the main
        process stays empty, and the warning can repeat once per worker (and
        per epoch unless ``persistent_workers=True``).

    Args:
        root: folder to search.
        image_size: output ``H == W`` as an int, or an ``(h, w)`` pair. Each
            image's shorter side is resized (bilinear, antialiased) to cover it,
            then the centre is cropped.
        extensions: file name endings to include, case-insensitive, with or
            without the leading dot.
        return_labels: return ``(image, class_index)`` where the class is the
            first-level sub-folder of ``root`` that holds the file.

    Attributes:
        files: sorted paths of the image files found.
        classes: sorted names of the first-level sub-folders that hold images.
        class_to_idx: class name to index into :attr:`classes`.
        labels: ``LongTensor`` of each file's class index when
            ``return_labels`` is true, else ``None``.
        skipped_files: paths found unreadable so far in this process.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        NotADirectoryError: ``root`` is a file.
        ValueError: no image files under ``root``, or ``return_labels`` with
            image files directly in ``root`` (they have no class folder).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        image_size: ImageSize,
        extensions: Iterable[str] | str = IMAGE_EXTENSIONS,
        return_labels: bool = False,
    ) -> None:
        self.root = Path(root)
        self.image_size = _parse_size(image_size)
        self.extensions = _normalise_extensions(extensions)
        self.return_labels = bool(return_labels)
        if not self.root.exists():
            raise FileNotFoundError(f"image folder {str(self.root)!r} does not exist")
        if not self.root.is_dir():
            raise NotADirectoryError(f"image folder {str(self.root)!r} is a file, not a folder")

        self.files: list[str] = self._find_files()
        if not self.files:
            raise ValueError(
                f"no image files found under {str(self.root)!r} (searched recursively "
                f"for extensions {', '.join(self.extensions)}, case-insensitive)"
            )

        relative_parts = [Path(path).relative_to(self.root).parts for path in self.files]
        self.classes: list[str] = sorted({parts[0] for parts in relative_parts if len(parts) > 1})
        self.class_to_idx: dict[str, int] = {name: i for i, name in enumerate(self.classes)}
        self.labels: torch.Tensor | None = None
        if self.return_labels:
            unlabelled = [path for path, parts in zip(self.files, relative_parts) if len(parts) == 1]
            if unlabelled:
                shown = ", ".join(repr(os.path.basename(p)) for p in unlabelled[:3])
                more = f" and {len(unlabelled) - 3} more" if len(unlabelled) > 3 else ""
                raise ValueError(
                    f"return_labels=True takes each image's class from its sub-folder of "
                    f"{str(self.root)!r}, but {len(unlabelled)} file(s) lie directly in it "
                    f"({shown}{more}); move them into class folders or use "
                    f"return_labels=False"
                )
            self.labels = torch.tensor(
                [self.class_to_idx[parts[0]] for parts in relative_parts], dtype=torch.long
            )
        self.skipped_files: set[str] = set()

    def _find_files(self) -> list[str]:
        found = []
        # os.walk rather than Path.rglob: it does not follow symlinked folders,
        # so a link cycle cannot make construction hang.
        for folder, _, names in os.walk(self.root):
            for name in names:
                if name.lower().endswith(self.extensions):
                    found.append(os.path.join(folder, name))
        return sorted(found)

    @property
    def skipped_count(self) -> int:
        """Number of files found unreadable so far in this process."""
        return len(self.skipped_files)

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, path: str) -> torch.Tensor:
        """Decodes one file to a float ``(C, H, W)`` tensor; raises if it cannot."""
        with Image.open(path) as image:
            # JPEGs can be decoded at 1/2, 1/4 or 1/8 scale almost for free; ask
            # for at least the target size on both sides (square, so it still
            # holds if EXIF rotation swaps the sides).
            side = max(self.image_size)
            image.draft(None, (side, side))
            image.load()
            try:
                # Phone photos store their rotation in EXIF; without this they
                # come out sideways. In place, so unrotated images are not copied.
                ImageOps.exif_transpose(image, in_place=True)
            except Exception:  # noqa: BLE001 - bad EXIF must not cost a good image
                pass
            return to_image_tensor(image)

    def _skip(self, path: str, error: Exception) -> None:
        self.skipped_files.add(path)
        if path not in _WARNED_FILES:
            _WARNED_FILES.add(path)
            warnings.warn(
                f"skipping unreadable image file {path!r} ({type(error).__name__}: {error}); "
                f"the next readable file is used in its place",
                SkippedImageWarning,
                stacklevel=3,
            )

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, int]:
        """Returns image ``index`` (or the next readable one).

        Returns:
            A float32 RGB tensor of shape ``(3, h, w)`` in ``[0, 1]``, or
            ``(image, class_index)`` when ``return_labels`` is true; the class
            is that of the file actually returned.

        Raises:
            RuntimeError: no file in the dataset can be decoded.
        """
        start = _check_index(index, len(self.files))
        for offset in range(len(self.files)):
            position = (start + offset) % len(self.files)
            path = self.files[position]
            if path in self.skipped_files:
                continue
            try:
                decoded = self._load(path)
            # PIL reports corrupt data with many exception types (OSError,
            # SyntaxError, struct.error, DecompressionBombError, ...); any
            # failure to decode one file must not stop training.
            except Exception as error:  # noqa: BLE001
                self._skip(path, error)
                continue
            image = _resize_and_center_crop(_to_rgb(decoded), self.image_size)
            if self.return_labels:
                assert self.labels is not None
                return image, int(self.labels[position])
            return image
        raise RuntimeError(
            f"none of the {len(self.files)} image files under {str(self.root)!r} could be "
            f"decoded; see the warnings for the errors"
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, image_size={self.image_size}, "
            f"files={len(self.files)}, classes={len(self.classes)}, "
            f"return_labels={self.return_labels})"
        )


class DigitsDataset(Dataset):
    """scikit-learn's handwritten digits, upsampled to a usable image size.

    1,797 real 8x8 grayscale digits (``sklearn.datasets.load_digits``, shipped
    with scikit-learn, so nothing is downloaded). Pixels are scaled from 0..16 to
    ``[0, 1]``, upsampled with antialiased bilinear interpolation and repeated to
    ``channels`` so that standard torchvision networks accept them. The whole
    split is computed once at construction and stored as one channel, which
    takes ``len * h * w * 4`` bytes (7 MB for the full set at 32x32).

    Args:
        image_size: output ``H == W`` as an int, or an ``(h, w)`` pair.
        split: ``"train"``, ``"test"`` or ``"all"``.
        return_labels: return ``(image, digit)`` instead of the image alone.
        channels: channels per image (the gray values are repeated).
        test_fraction: share of the images in the test split, in ``(0, 1)``.
        seed: seed of the split; the split is stratified by digit, so both sides
            hold every digit in the same proportions.

    Attributes:
        indices: ``LongTensor`` of positions in the full 1,797-image set.
        labels: ``LongTensor`` of digits 0..9, one per item.
        classes: ``["0", ..., "9"]``.
    """

    num_total = 1797

    def __init__(
        self,
        image_size: ImageSize = 32,
        split: Split = "train",
        return_labels: bool = False,
        channels: int = 3,
        test_fraction: float = 0.25,
        seed: int = 0,
    ) -> None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        self.image_size = _parse_size(image_size)
        if (
            isinstance(channels, bool)
            or not isinstance(channels, (int, np.integer))
            or channels <= 0
        ):
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if not isinstance(test_fraction, (int, float)) or not 0.0 < test_fraction < 1.0:
            raise ValueError(
                f"test_fraction must be a number strictly between 0 and 1, got {test_fraction!r}"
            )
        self.split = split
        self.return_labels = bool(return_labels)
        self.channels = int(channels)
        self.test_fraction = float(test_fraction)
        self.seed = int(seed)

        digits = load_digits()
        images = np.asarray(digits.images, dtype=np.float32)  # (N, 8, 8), 0..16
        targets = np.asarray(digits.target, dtype=np.int64)

        all_indices = np.arange(len(targets))
        if split == "all":
            chosen = all_indices
        else:
            train_indices, test_indices = train_test_split(
                all_indices,
                test_size=self.test_fraction,
                random_state=self.seed,
                stratify=targets,
            )
            # Sorted so items keep the original dataset order within a split.
            chosen = np.sort(train_indices if split == "train" else test_indices)

        pixels = torch.from_numpy(images[chosen] / 16.0).unsqueeze(1)
        if tuple(pixels.shape[-2:]) != self.image_size:
            pixels = F.interpolate(
                pixels,
                size=self.image_size,
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        self._gray = pixels.clamp_(0.0, 1.0).contiguous()  # (N, 1, h, w)
        self.indices = torch.from_numpy(chosen.astype(np.int64))
        self.labels = torch.from_numpy(targets[chosen])
        self.classes = [str(digit) for digit in range(10)]

    @property
    def images(self) -> torch.Tensor:
        """All images as a read-only ``(N, channels, h, w)`` view (no copy)."""
        return self._gray.expand(-1, self.channels, -1, -1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, int]:
        """Returns image ``index`` of shape ``(channels, h, w)``, or ``(image, digit)``."""
        position = _check_index(index, len(self.labels))
        # repeat, not expand: a copy the caller's in-place augmentations may modify.
        image = self._gray[position].repeat(self.channels, 1, 1)
        if self.return_labels:
            return image, int(self.labels[position])
        return image

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(image_size={self.image_size}, split={self.split!r}, "
            f"len={len(self)}, channels={self.channels}, return_labels={self.return_labels})"
        )
