"""WebDataset tar shards: the shard names of a brace pattern, their samples, and a random-access index.

A shard is a tar file whose members are grouped into samples by the name
before the first dot of the file name (``000017.jpg`` and ``000017.cls`` are
one sample, key ``000017``). A sample's image is its first member with an image
extension (:data:`SHARD_IMAGE_EXTENSIONS`); a ``.cls`` member, if any, holds its
integer label as text; every other member is ignored. Reading the tar stream
is ``webdataset``'s (:func:`shard_samples`); :class:`ShardIndex` lists where
each member of local shards lies, for evaluation and embedding, which need
every sample once, by index.
"""

from __future__ import annotations

import logging
import os
import tarfile
from collections.abc import Iterator
from typing import Any

from ...errors import NoImagesError

_LOG = logging.getLogger(__name__)

# The member extensions read as the sample's image, in order of preference.
SHARD_IMAGE_EXTENSIONS: tuple[str, ...] = ("jpg", "jpeg", "png", "webp")
# The member extension that holds a sample's class index.
LABEL_EXTENSION = "cls"


def expand_shards(pattern: str) -> list[str]:
    """The shard names of a brace pattern: ``'train-{000000..000003}.tar'`` gives four names.

    Several patterns can be joined with ``::``, as webdataset reads them.

    Raises:
        ValueError: the pattern names no shard.
    """
    from webdataset.shardlists import expand_urls

    urls = list(expand_urls(pattern))
    if not urls:
        raise ValueError(f"shard pattern {pattern!r} names no shard; expected e.g. 'train-{{000000..000127}}.tar'")
    return urls


def looks_like_shards(data: str) -> bool:
    """Whether ``data`` names tar shards (``.tar`` names, brace patterns of them) rather than a folder."""
    return all(part.strip().endswith(".tar") for part in data.split("::"))


def training_sample(sample: dict[str, Any]) -> dict[str, Any] | None:
    """A webdataset sample as ``{"__key__", "image": bytes[, "label": bytes]}``; ``None`` without an image.

    The extensions compare case-insensitively (webdataset lowercases them).
    """
    image = next((sample[ext] for ext in SHARD_IMAGE_EXTENSIONS if ext in sample), None)
    if image is None:
        return None
    item = {"__key__": f"{sample.get('__url__', '')}:{sample.get('__key__', '')}", "image": image}
    if LABEL_EXTENSION in sample:
        item["label"] = sample[LABEL_EXTENSION]
    return item


def shard_samples(url: str) -> Iterator[dict[str, Any]]:
    """The samples of one shard that hold an image, in tar order, as :func:`training_sample` makes them.

    A sample without an image member is logged and passed over; a shard that
    cannot be opened or is cut short is logged, and the samples read before
    the damage are kept (webdataset's ``warn_and_continue``).
    """
    import webdataset as wds

    for sample in wds.tarfile_samples([{"url": url}], handler=wds.warn_and_continue):
        item = training_sample(sample)
        if item is None:
            _LOG.warning("skipped sample %s of shard %s: no image member (%s)", sample.get("__key__"), url,
                         ", ".join("." + ext for ext in SHARD_IMAGE_EXTENSIONS))
            continue
        yield item


def _key_and_extension(name: str) -> tuple[str, str]:
    folder, base = os.path.split(name)
    stem, _, extension = base.partition(".")
    return os.path.join(folder, stem), extension.lower()


class ShardIndex:
    """Every sample with an image in local tar shards, readable by index (map-style).

    Construction reads each tar's headers once (no member's data); an item
    seeks to its members and reads them. Meant for evaluation and embedding,
    where each sample is read once; training reads shards as a stream
    (:func:`shard_samples`).

    Args:
        urls: paths of local, uncompressed tar files.

    Attributes:
        keys: ``shard:key`` of each sample, in shard then tar order.

    Raises:
        FileNotFoundError: a shard does not exist.
        NoImagesError: no sample of the shards has an image member.
    """

    def __init__(self, urls: list[str]) -> None:
        self.urls = list(urls)
        # Per sample: (shard number, key, {extension: (offset, size)}) of the members kept.
        self._samples: list[tuple[int, str, dict[str, tuple[int, int]]]] = []
        for number, url in enumerate(self.urls):
            if not os.path.isfile(url):
                raise FileNotFoundError(f"shard {url!r} does not exist")
            self._index_shard(number, url)
        if not self._samples:
            raise NoImagesError(f"no sample with an image ({', '.join('.' + e for e in SHARD_IMAGE_EXTENSIONS)}) in "
                                f"{len(self.urls)} shard(s) starting with {self.urls[0]!r}")
        self.keys = [f"{self.urls[n]}:{key}" for n, key, _ in self._samples]

    def _index_shard(self, number: int, url: str) -> None:
        members: dict[str, dict[str, tuple[int, int]]] = {}
        try:
            with tarfile.open(url, mode="r:") as tar:
                for info in tar:
                    if info.isreg():
                        key, extension = _key_and_extension(info.name)
                        members.setdefault(key, {})[extension] = (info.offset_data, info.size)
        except tarfile.TarError as error:  # a damaged tail: keep what was listed before it
            _LOG.warning("shard %s is damaged after %d samples: %s", url, len(members), error)
        for key, found in members.items():
            image = next((ext for ext in SHARD_IMAGE_EXTENSIONS if ext in found), None)
            if image is None:
                continue
            kept = {"image": found[image]}
            if LABEL_EXTENSION in found:
                kept["label"] = found[LABEL_EXTENSION]
            self._samples.append((number, key, kept))

    def __len__(self) -> int:
        return len(self._samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Sample ``index`` as ``{"__key__", "image": bytes[, "label": bytes]}``."""
        number, key, members = self._samples[index]
        item: dict[str, Any] = {"__key__": self.keys[index]}
        with open(self.urls[number], "rb") as handle:
            for name, (offset, size) in members.items():
                handle.seek(offset)
                item[name] = handle.read(size)
        return item

    def has_labels(self) -> bool:
        """Whether every sample has a ``.cls`` member."""
        return all("label" in members for _, _, members in self._samples)
