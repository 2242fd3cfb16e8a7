"""Every image under a folder, resized to one size, robust to files that cannot be decoded."""

from __future__ import annotations

import bisect
import copy
import logging
import math
import os
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import MissingClassFolderError, NoImagesError
from ..model.augment import as_size
from .crops import CroppedViews, LoaderCrops
from .decode import load_upright_rgb8, pil_to_uint8
from .evaluation import EVAL_RESIZE, resize_and_center_crop
from .images import IMAGE_EXTENSIONS, ImageSize, check_index

OnUnreadable = Literal["next", "return_none"]

# One line per unreadable file. Through logging rather than warnings.warn: a
# warning raised in a DataLoader worker prints a line of torch's source with
# it, and logging with no handler configured writes just the message to stderr
# (logging.lastResort), from whichever process meets the file.
_LOG = logging.getLogger(__name__)


class UnreadableReports:
    """Which unreadable files were reported, shared by datasets over the same files: each file gets one line.

    Within one dataset the mask in shared memory already keeps a file to one
    line across workers and epochs. Datasets given the same
    ``UnreadableReports`` (the command line's training and evaluation copies
    of one folder) also look at each other's masks, which hold what their
    workers met, and at the files reported in this process, before reporting.
    """

    def __init__(self) -> None:
        self._datasets: weakref.WeakSet[ImageFolderDataset] = weakref.WeakSet()
        self._reported: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        # A copy sent to a spawned worker keeps what was reported, not the datasets (weak references do not pickle).
        return {"_reported": set(self._reported)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._datasets = weakref.WeakSet()
        self._reported = state["_reported"]

    def join(self, dataset: ImageFolderDataset) -> None:
        """Counts ``dataset`` among those whose reports are shared."""
        self._datasets.add(dataset)

    def first(self, dataset: ImageFolderDataset, path: str) -> bool:
        """Whether ``path``, just found unreadable by ``dataset``, is to be reported (and records it if so)."""
        if path in self._reported or any(
            other._unreadable.data_ptr() != dataset._unreadable.data_ptr() and other._marked(path)
            for other in list(self._datasets)
        ):
            return False
        self._reported.add(path)
        return True


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


class ImageFolderDataset(Dataset):
    """Every image file under a folder, as RGB tensors of one size, or as two cropped views.

    Two kinds of items:

    * without ``views`` (evaluation, embedding, the kNN monitor): the standard
      evaluation transform, deterministic. The shorter side is resized to
      ``image_size x 256/224`` (bilinear, antialiased) and the centre
      ``image_size`` square is cut out, as a float32 ``(3, h, w)`` in [0, 1];
    * with ``views=LoaderCrops(...)`` (training): the two views' random
      resized crops and flips, drawn from the whole decoded image, as a
      :class:`~byol_pytorch.data.crops.CroppedViews` pair of uint8 ``(3, h, w)``.
      The draws depend on ``(seed, epoch, index)``; :meth:`set_epoch` sets the
      epoch (through shared memory, so it reaches ``DataLoader`` workers).

    Files are found recursively and sorted by path, so the order is the same
    on every machine. Nothing is decoded at construction; a corrupt or
    unreadable file is discovered when it is first loaded, reported once on
    stderr (``skipped unreadable image PATH: REASON``, through the logger
    ``byol_pytorch.data.folder``) and marked in a mask in shared memory, so
    that the files met by ``DataLoader`` worker processes (fork or spawn) are
    counted in :attr:`skipped_files` of the dataset in the main process too,
    and a file met again (another epoch, another worker) is neither decoded
    nor reported again. What an unreadable file's index returns is set by
    ``on_unreadable``.

    Args:
        root: folder to search.
        image_size: output ``H == W`` as an int, or an ``(h, w)`` pair.
        extensions: file name endings to include, case-insensitive, with or
            without the leading dot.
        return_labels: return ``(image, class_index)`` where the class is the
            first-level sub-folder of ``root`` that holds the file.
        on_unreadable: ``"next"`` returns the next readable file instead
            (``index + 1``, wrapping around), so training batches stay full;
            ``"return_none"`` returns ``None``, which
            :func:`~byol_pytorch.evaluate.extract_features` leaves out with its
            label, so that evaluation reads every file at most once and a bank
            and a query set split by index never share an image.
        views: draws training views in the loader instead of the evaluation
            transform (:meth:`with_views` gives such a copy of a dataset).
        resize_ratio: the evaluation transform's resize, relative to
            ``image_size`` (256/224).
        reports: shared with other datasets over the same files, so that an
            unreadable file is reported once among them (default: this
            dataset's own).

    Attributes:
        files: sorted paths of the image files found.
        classes: sorted names of the first-level sub-folders that hold images.
        class_to_idx: class name to index into :attr:`classes`.
        labels: ``LongTensor`` of each file's class index when
            ``return_labels`` is true, else ``None``.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        NotADirectoryError: ``root`` is a file.
        ValueError: no image files under ``root``, ``return_labels`` with
            image files directly in ``root`` (they have no class folder), or an
            unknown ``on_unreadable``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        image_size: ImageSize,
        extensions: Iterable[str] | str = IMAGE_EXTENSIONS,
        return_labels: bool = False,
        on_unreadable: OnUnreadable = "next",
        views: LoaderCrops | None = None,
        resize_ratio: float = EVAL_RESIZE,
        reports: UnreadableReports | None = None,
    ) -> None:
        self.root = Path(root)
        self.image_size = as_size(image_size, minimum=1)
        self.extensions = _normalise_extensions(extensions)
        self.return_labels = bool(return_labels)
        if on_unreadable not in ("next", "return_none"):
            raise ValueError(f"on_unreadable must be 'next' or 'return_none', got {on_unreadable!r}")
        self.on_unreadable = on_unreadable
        if views is not None and not isinstance(views, LoaderCrops):
            raise TypeError(f"views must be a LoaderCrops or None, got {type(views).__name__}")
        if views is not None:
            self._check_views_size(views)
        if not resize_ratio >= 1.0:
            raise ValueError(f"resize_ratio must be at least 1 (the crop lies inside the resized image), "
                             f"got {resize_ratio!r}")
        self.views = views
        self.resize_ratio = float(resize_ratio)
        self._epoch = torch.zeros(1, dtype=torch.long).share_memory_()
        self._item_epoch: int | None = None
        if not self.root.exists():
            raise FileNotFoundError(f"image folder {str(self.root)!r} does not exist")
        if not self.root.is_dir():
            raise NotADirectoryError(f"image folder {str(self.root)!r} is a file, not a folder")

        self.files: list[str] = self._find_files()
        if not self.files:
            raise NoImagesError(
                f"no image files found under {str(self.root)!r} (searched recursively "
                f"for extensions {', '.join(self.extensions)}, case-insensitive)"
            )

        relative_parts = [Path(path).relative_to(self.root).parts for path in self.files]
        self.classes: list[str] = sorted({parts[0] for parts in relative_parts if len(parts) > 1})
        self.class_to_idx: dict[str, int] = {name: i for i, name in enumerate(self.classes)}
        self.labels: torch.Tensor | None = self._folder_labels(relative_parts) if self.return_labels else None
        # One byte per file, 1 once it failed to decode. Shared memory, so the
        # marks of worker processes reach this object (forked workers write
        # to the same pages, spawned ones receive a handle when the dataset
        # is sent to them).
        self._unreadable = torch.zeros(len(self.files), dtype=torch.uint8).share_memory_()
        self._reports = reports if reports is not None else UnreadableReports()
        self._reports.join(self)

    def _folder_labels(self, relative_parts: list[tuple[str, ...]]) -> torch.Tensor:
        """Each file's class index, from the first folder of its path under ``root``.

        Raises:
            MissingClassFolderError: a file lies directly in ``root``, so it has no class folder.
        """
        unlabelled = [path for path, parts in zip(self.files, relative_parts) if len(parts) == 1]
        if unlabelled:
            shown = ", ".join(repr(os.path.basename(p)) for p in unlabelled[:3])
            more = f" and {len(unlabelled) - 3} more" if len(unlabelled) > 3 else ""
            raise MissingClassFolderError(
                f"return_labels=True takes each image's class from its sub-folder of "
                f"{str(self.root)!r}, but {len(unlabelled)} file(s) lie directly in it "
                f"({shown}{more}); move them into class folders or use "
                f"return_labels=False", unlabelled
            )
        return torch.tensor([self.class_to_idx[parts[0]] for parts in relative_parts], dtype=torch.long)

    def _check_views_size(self, views: LoaderCrops) -> None:
        if views.spec.size != self.image_size:
            raise ValueError(f"views crop to {views.spec.size} but image_size is {self.image_size}; use one size")

    def with_views(self, views: LoaderCrops) -> ImageFolderDataset:
        """A copy that yields loader-cropped training views; it shares files and the unreadable mask."""
        twin = copy.copy(self)
        self._check_views_size(views)
        twin.views = views
        twin._epoch = torch.zeros(1, dtype=torch.long).share_memory_()
        self._reports.join(twin)
        return twin

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch the loader crops are drawn for (seen by running ``DataLoader`` workers)."""
        self._epoch[0] = int(epoch)

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
    def skipped_files(self) -> set[str]:
        """Paths found unreadable so far, by this process or its ``DataLoader`` workers."""
        return {self.files[i] for i in torch.nonzero(self._unreadable).flatten().tolist()}

    @property
    def skipped_count(self) -> int:
        """Number of files found unreadable so far, by this process or its ``DataLoader`` workers."""
        return int(self._unreadable.sum())

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, position: int, index: int, epoch: int) -> torch.Tensor | CroppedViews:
        """Decodes file ``position`` to this dataset's kind of item; raises if it cannot."""
        with Image.open(self.files[position]) as image:
            if self.views is not None:
                return self.views(image, index, epoch)
            # JPEGs can be decoded at 1/2, 1/4 or 1/8 scale almost for free; ask
            # for at least the resized size on both sides (square, so it still
            # holds if EXIF rotation swaps the sides).
            side = math.ceil(max(self.image_size) * self.resize_ratio)
            image.draft(None, (side, side))
            decoded = pil_to_uint8(load_upright_rgb8(image))
        return resize_and_center_crop(decoded, self.image_size, self.resize_ratio)

    def _marked(self, path: str) -> bool:
        """Whether ``path`` is one of this dataset's files and marked unreadable."""
        position = bisect.bisect_left(self.files, path)
        return position < len(self.files) and self.files[position] == path and bool(self._unreadable[position])

    def _skip(self, position: int, error: Exception) -> None:
        path = self.files[position]
        # Check, then mark: not atomic, so two workers decoding the same file
        # at the same instant could both report it. Each index is read once
        # per epoch, so that takes a broken file that one worker reaches by
        # its own index while another reaches it scanning past a broken
        # neighbour ("next"), both within one decode's time.
        first = self._unreadable[position].item() == 0
        self._unreadable[position] = 1
        # Another dataset sharing the reports (the CLI's evaluation copy) may have reported it already;
        # a twin of with_views shares this mask and does not count as another.
        if first and self._reports.first(self, path):
            # One line whatever PIL says, without repeating the path the line starts with.
            reason = " ".join(f"{type(error).__name__}: {error}".replace(f" {path!r}", "").split())
            _LOG.warning("skipped unreadable image %s: %s", path, reason)

    def _decode(self, position: int, index: int, epoch: int) -> torch.Tensor | CroppedViews | None:
        """File ``position`` as an item, or ``None`` if it is (now known to be) unreadable."""
        if self._unreadable[position]:
            return None
        try:
            return self._load(position, index, epoch)
        # PIL reports corrupt data with many exception types (OSError,
        # SyntaxError, struct.error, DecompressionBombError, ...); any failure
        # to decode one file must not stop training.
        except Exception as error:  # noqa: BLE001
            self._skip(position, error)
            return None

    def set_item_epoch(self, epoch: int | None) -> None:
        """Sets the epoch of the loader crops for the items this process reads next (``None``: :meth:`set_epoch`'s).

        Unlike :meth:`set_epoch` it is not shared with ``DataLoader`` workers:
        the training loader's workers each set it before every item, from the
        epoch that comes with the item's index.
        """
        self._item_epoch = None if epoch is None else int(epoch)

    def __getitem__(self, index: int) -> torch.Tensor | CroppedViews | tuple[torch.Tensor | CroppedViews, int] | None:
        """Returns image ``index``; for an unreadable file, what ``on_unreadable`` says.

        Returns:
            A float32 RGB tensor of shape ``(3, h, w)`` in ``[0, 1]`` (with
            ``views``: a ``CroppedViews`` pair of uint8 ``(3, h, w)``), or
            ``(image, class_index)`` when ``return_labels`` is true; the class
            is that of the file actually returned. ``None`` for an unreadable
            file with ``on_unreadable="return_none"``.

        Raises:
            RuntimeError: with ``on_unreadable="next"``, no file in the dataset
                can be decoded.
        """
        start = check_index(index, len(self.files))
        epoch = self._item_epoch if self._item_epoch is not None else int(self._epoch[0])
        attempts = 1 if self.on_unreadable == "return_none" else len(self.files)
        for offset in range(attempts):
            position = (start + offset) % len(self.files)
            image = self._decode(position, start, epoch)
            if image is None:
                continue
            if self.return_labels:
                assert self.labels is not None
                return image, int(self.labels[position])
            return image
        if self.on_unreadable == "return_none":
            return None
        raise RuntimeError(
            f"none of the {len(self.files)} image files under {str(self.root)!r} could be "
            f"decoded; each was reported on stderr with its error"
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, image_size={self.image_size}, "
            f"files={len(self.files)}, classes={len(self.classes)}, "
            f"return_labels={self.return_labels}, on_unreadable={self.on_unreadable!r}, views={self.views!r})"
        )
