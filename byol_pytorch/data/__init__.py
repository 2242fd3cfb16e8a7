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
  standard evaluation transform, or (``views=LoaderCrops(...)``) as the two
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
* :mod:`.sources`, what the command line's ``--data`` names, opened.

Nothing here imports ``accelerate``; the module only depends on torch,
torchvision, PIL, numpy and scikit-learn (``webdataset`` and ``datasets`` when
shards or Hugging Face data are read).
"""

from .crops import CroppedViews, LoaderCrops, collate_views
from .digits import DigitsDataset
from .evaluation import EVAL_RESIZE
from .folder import ImageFolderDataset, UnreadableReports
from .images import IMAGE_EXTENSIONS, collate_images, to_image_tensor
from .items import IMAGE_KEY, check_first_item, image_of
from .mock import MockDataset
from .photos import PhotoDataset, PhotoTransform, UnreadableImageError
from .streams import TrainingStream

__all__ = [
    "EVAL_RESIZE",
    "IMAGE_EXTENSIONS",
    "IMAGE_KEY",
    "CroppedViews",
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
