"""Every image under a folder, resized to one size, robust to files that cannot be decoded."""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ...errors import MissingClassFolderError, NoImagesError
from ...sizes import ImageSize
from ..formats.center_crop import EVAL_RESIZE
from ..formats.photo import PhotoTransform
from ..formats.tensors import IMAGE_EXTENSIONS
from ..views.crops import CroppedViews, LoaderCrops, crops_argument
from .base import DecodedDataset, OnUnreadable, UnreadableReports


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


class ImageFolderDataset(DecodedDataset):
    """Every image file under a folder, as RGB tensors of one size, or as two cropped views.

    Two kinds of items:

    * without ``crops`` (evaluation, embedding, the kNN monitor): the standard
      evaluation transform, deterministic. The shorter side is resized to
      ``image_size x 256/224`` (bilinear, antialiased) and the centre
      ``image_size`` square is cut out, as a float32 ``(3, h, w)`` in [0, 1];
    * with ``crops=LoaderCrops(...)`` (training): the two views' random
      resized crops and flips, drawn from the whole decoded image, as a
      :class:`~byol_pytorch.data.CroppedViews` pair of uint8 ``(3, h, w)``.
      The draws depend on ``(seed, epoch, index)``; :meth:`set_epoch` sets the
      epoch (through shared memory, so it reaches ``DataLoader`` workers).

    Files are found recursively and sorted by path, so the order is the same
    on every machine. Nothing is decoded at construction; a corrupt or
    unreadable file is discovered when it is first loaded, reported once on
    stderr (``skipped unreadable image PATH: REASON``, through the logger
    ``byol_pytorch.data``) and marked in a mask in shared memory, so
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
        crops: draws the training views in the loader instead of the
            evaluation transform (:meth:`with_crops` gives such a copy of a dataset).
        resize_ratio: the evaluation transform's resize, relative to
            ``image_size`` (256/224).
        reports: shared with other datasets over the same files, so that an
            unreadable file is reported once among them (default: this
            dataset's own).
        views: ``crops`` under its byol-pytorch 1.0 name.

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
        crops: LoaderCrops | None = None,
        resize_ratio: float = EVAL_RESIZE,
        reports: UnreadableReports | None = None,
        *,
        views: LoaderCrops | None = None,
    ) -> None:
        self.root = Path(root)
        transform = PhotoTransform(image_size, image_key=None, crops=crops_argument(crops, views),
                                   resize_ratio=resize_ratio)
        self.extensions = _normalise_extensions(extensions)
        self.return_labels = bool(return_labels)
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
        super().__init__(transform, len(self.files), on_unreadable, reports)

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
        return {self.files[i] for i in self.skipped_indices}

    def raw(self, position: int) -> str:
        """The path of file ``position``."""
        return self.files[position]

    def name(self, position: int) -> str:
        """The path of file ``position``."""
        return self.files[position]

    def position_of(self, name: str) -> int | None:
        """The position of the file at path ``name`` (the files are sorted), if it is one of them."""
        position = bisect.bisect_left(self.files, name)
        return position if position < len(self.files) and self.files[position] == name else None

    def _item(self, position: int, image: Any) -> Any:
        if self.return_labels:
            assert self.labels is not None
            return image, int(self.labels[position])
        return image

    def __getitem__(self, index: int) -> torch.Tensor | CroppedViews | tuple[torch.Tensor | CroppedViews, int] | None:
        """Returns image ``index``; for an unreadable file, what ``on_unreadable`` says.

        Returns:
            A float32 RGB tensor of shape ``(3, h, w)`` in ``[0, 1]`` (with
            ``crops``: a ``CroppedViews`` pair of uint8 ``(3, h, w)``), or
            ``(image, class_index)`` when ``return_labels`` is true; the class
            is that of the file actually returned. ``None`` for an unreadable
            file with ``on_unreadable="return_none"``.

        Raises:
            RuntimeError: with ``on_unreadable="next"``, no file in the dataset
                can be decoded.
        """
        return super().__getitem__(index)

    def _what(self) -> str:
        return f"{len(self.files)} image files under {str(self.root)!r}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, image_size={self.image_size}, "
            f"files={len(self.files)}, classes={len(self.classes)}, "
            f"return_labels={self.return_labels}, on_unreadable={self.on_unreadable!r}, crops={self.crops!r})"
        )
