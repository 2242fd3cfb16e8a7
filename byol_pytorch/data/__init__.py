"""Image datasets and the glue that turns dataset items into training batches.

BYOL only needs images: labels are optional and only used for evaluation. This
module provides

* :func:`to_image_tensor` and :func:`collate_images`, which accept the item
  formats people actually have (tensors, PIL images, numpy arrays, and
  ``(image, label)`` pairs from labelled datasets) and produce a float32
  ``(B, C, H, W)`` batch in ``[0, 1]``;
* :class:`MockDataset`, deterministic random images for tests and smoke runs;
* :class:`ImageFolderDataset`, every image under a folder, robust to corrupt
  files so that one bad JPEG never ends a long run: centre-cropped by the
  standard evaluation transform, or (``crops=LoaderCrops(...)``) as the two
  training views' crops, drawn from the whole photo in the loader as uint8
  (:func:`collate_views` batches them);
* :class:`DigitsDataset`, scikit-learn's bundled 8x8 handwritten digits, a real
  labelled image set that needs no download;
* dict items (Hugging Face rows, WebDataset samples): the image under
  ``image_key`` or the only image-like value (:func:`image_of`), and
  :func:`check_first_item`, which refuses a dataset without images before
  training;
* :class:`PhotoDataset` and :class:`PhotoTransform`, photos of any size held
  by any item (a ``datasets.Dataset`` row, a shard sample) as images of one
  size or loader-cropped views;
* :class:`TrainingStream`, tar shards, ``datasets.IterableDataset`` s and other
  streams split across processes and workers, shuffled in a buffer, resumable;
* :class:`CropsInLoader`, what every dataset, transform and stream whose items
  can become the two views implements.

The modules are grouped by job: ``formats`` (where an item's image is, to a
tensor, decoding a photo, the evaluation crop), ``datasets`` (folders and rows
of photos sharing one decode-and-skip, random images, digits), ``views`` (the
views' crops drawn in the loader, JPEGs decoded on the device), ``streams``
(tar shards, per-slot readers, the stream, its progress) and ``pipeline``
(from what a trainer is given to the learner's input).

Nothing here imports ``accelerate`` or ``byol_pytorch.model``; the package only depends on torch,
torchvision, PIL, numpy and scikit-learn (``webdataset`` and ``datasets`` when
shards or Hugging Face data are read).
"""

from .datasets.base import UnreadableReports
from .datasets.digits import DigitsDataset
from .datasets.folder import ImageFolderDataset
from .datasets.mock import MockDataset
from .datasets.photos import PhotoDataset
from .formats.center_crop import EVAL_RESIZE
from .formats.decode import UnreadableImageError
from .formats.items import IMAGE_KEY, check_first_item, image_of
from .formats.photo import PhotoTransform
from .formats.tensors import IMAGE_EXTENSIONS, collate_images, to_image_tensor
from .streams.stream import TrainingStream
from .views.crops import CroppedViews, CropsInLoader, LoaderCrops, collate_views

__all__ = [
    "EVAL_RESIZE",
    "IMAGE_EXTENSIONS",
    "IMAGE_KEY",
    "CroppedViews",
    "CropsInLoader",
    "DigitsDataset",
    "ImageFolderDataset",
    "LoaderCrops",
    "MockDataset",
    "PhotoDataset",
    "PhotoTransform",
    "TrainingStream",
    "UnreadableImageError",
    "UnreadableReports",
    "check_first_item",
    "collate_images",
    "collate_views",
    "image_of",
    "to_image_tensor",
]
