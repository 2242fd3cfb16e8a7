"""Small photo collections in every form the library reads: tar shards, Hugging Face datasets, Parquet.

Cut from scikit-image's bundled photographs (no download), a few dozen of
32-48 px, so that the tests that read them take seconds.
"""

from __future__ import annotations

import io
import tarfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins")


@lru_cache(maxsize=1)
def _sources() -> tuple[Image.Image, ...]:
    import skimage.data

    return tuple(Image.fromarray(getattr(skimage.data, name)()).convert("RGB") for name in PHOTOS)


def photo(index: int) -> Image.Image:
    """Photo ``index``: a window of one of the photographs, 48x36 or 36x48 (sizes differ on purpose)."""
    source = _sources()[index % len(PHOTOS)]
    rng = np.random.default_rng(index)
    side = int(min(source.size) * rng.uniform(0.4, 0.9))
    left = int(rng.integers(0, source.width - side + 1))
    top = int(rng.integers(0, source.height - side + 1))
    size = (48, 36) if index % 2 == 0 else (36, 48)
    return source.resize(size, Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def label(index: int) -> int:
    return index % 3


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_shards(folder: Path, shards: int, per_shard: int, broken: tuple[int, ...] = (),
                 extension: str = "jpg") -> str:
    """``shards`` tar files of ``per_shard`` samples each (``KEY.jpg``, ``KEY.cls``, ``KEY.json``).

    Samples are numbered through all shards; those in ``broken`` hold bytes that
    are not an image. Returns the brace pattern naming the shards.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for shard in range(shards):
        with tarfile.open(folder / f"train-{shard:06d}.tar", "w") as tar:
            for offset in range(per_shard):
                index = shard * per_shard + offset
                data = b"not a jpeg" * 8 if index in broken else jpeg_bytes(photo(index))
                _add(tar, f"{index:06d}.{extension}", data)
                _add(tar, f"{index:06d}.cls", str(label(index)).encode())
                _add(tar, f"{index:06d}.json", b'{"ignored": true}')
    return str(folder / f"train-{{{0:06d}..{shards - 1:06d}}}.tar")


def sample_key(pattern_folder: Path, index: int, per_shard: int) -> str:
    """The ``shard:key`` the library gives sample ``index`` of :func:`write_shards`."""
    return f"{pattern_folder / f'train-{index // per_shard:06d}.tar'}:{index:06d}"


def hf_dataset(count: int):  # -> datasets.Dataset
    """A ``datasets.Dataset`` with an ``image`` column (PIL, decoded lazily) and a ``label`` column."""
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    rows = {"image": [{"bytes": jpeg_bytes(photo(i)), "path": None} for i in range(count)],
            "label": [label(i) for i in range(count)]}
    return datasets.Dataset.from_dict(rows, features=features)


def write_parquet(path: Path, count: int, image_column: str = "picture", label_column: str = "kind") -> Path:
    """A Parquet file written by pyarrow alone: a binary column of JPEG bytes and an integer label column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({image_column: pa.array([jpeg_bytes(photo(i)) for i in range(count)], type=pa.binary()),
                      label_column: pa.array([label(i) for i in range(count)], type=pa.int64())})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path
