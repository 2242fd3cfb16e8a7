"""Dict items (byol_pytorch/data/formats/items.py): where the image is, and items refused before training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import IterableDataset

from byol_pytorch.data import collate_images, to_image_tensor
from byol_pytorch.data.formats.items import check_first_item, image_of, label_of
from byol_pytorch.errors import NoImageInItemError

from .photo_sources import hf_dataset, jpeg_bytes, photo


def test_the_image_key_wins_then_the_only_image_like_value() -> None:
    image, other = torch.rand(3, 8, 8), torch.rand(3, 8, 8)
    assert image_of({"image": image, "mask": other}) is image
    assert image_of({"pixels": image, "label": 3, "caption": "a cat"}) is image
    assert image_of({"rgb": image, "depth": other}, image_key="depth") is other
    assert image_of((image, 3)) is image and image_of(image) is image


def test_a_dict_without_an_image_is_refused_naming_its_keys() -> None:
    with pytest.raises(NoImageInItemError, match=r"keys \['caption', 'label'\]: no key 'image' and no image-like") as err:
        image_of({"label": 3, "caption": "a cat"})
    assert err.value.keys == ["caption", "label"]
    with pytest.raises(NoImageInItemError, match=r"2 image-like values \('left', 'right'\)"):
        image_of({"left": torch.rand(3, 4, 4), "right": torch.rand(3, 4, 4)})


def test_dict_items_collate_with_a_key_and_from_encoded_bytes() -> None:
    pixels = torch.randint(0, 256, (3, 6, 5), dtype=torch.uint8)
    batch = collate_images([{"rgb": pixels, "label": 0}, {"rgb": pixels, "label": 1}], image_key="rgb")
    assert torch.equal(batch, torch.stack([pixels, pixels]).float() / 255)
    # Encoded JPEG bytes (a WebDataset member, an undecoded HF image) are decoded.
    picture = photo(0)
    decoded = to_image_tensor({"jpg": jpeg_bytes(picture), "cls": 1})
    assert decoded.shape == (3, picture.height, picture.width)
    assert torch.equal(to_image_tensor({"image": {"bytes": jpeg_bytes(picture), "path": None}}), decoded)


def test_labels_from_dicts_pairs_and_cls_bytes() -> None:
    assert label_of({"label": 4}, "label") == 4
    assert label_of({"cls": b"7\n"}, "cls") == 7
    assert label_of((torch.zeros(1), 2), None) == 2
    with pytest.raises(KeyError, match=r"no label 'kind'; its keys are \['image', 'label'\]"):
        label_of({"image": 0, "label": 1}, "kind")
    with pytest.raises(ValueError, match="must be an integer class index, got 'cat'"):
        label_of({"label": "cat"}, "label")


def test_check_first_item_reads_a_hugging_face_dataset() -> None:
    dataset = hf_dataset(3)
    image = check_first_item(dataset)
    assert isinstance(image, Image.Image) and image.size == photo(0).size
    with pytest.raises(NoImageInItemError, match=r"keys \['label'\]"):
        check_first_item(dataset.remove_columns("image"))


class _Strings(IterableDataset):
    def __iter__(self):
        yield from ("a", "b")


@pytest.mark.parametrize(("dataset", "message"), [
    ([{"caption": "x", "id": 1}], r"keys \['caption', 'id'\]"),
    (["path/to/a.jpg"], r"holds a builtins\.str, not an image"),
    ([(7, 1)], r"holds a builtins\.int \(inside an item of type builtins\.tuple\)"),
    (_Strings(), r"holds a builtins\.str"),
    ([], r"is empty"),
])
def test_check_first_item_refuses_what_holds_no_image(dataset: object, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        check_first_item(dataset)  # type: ignore[arg-type]


def test_check_first_item_returns_the_image_of_every_image_kind() -> None:
    images = (torch.rand(3, 4, 4), np.zeros((4, 4, 3), np.uint8), photo(1), photo(2), photo(3))
    items = (images[0], images[1], images[2], (images[3], 1), {"image": images[4]})
    for item, image in zip(items, images):
        assert check_first_item([item]) is image


def test_webdataset_samples_find_their_image_among_other_bytes() -> None:
    # A raw WebDataset sample: the label and the metadata are bytes too, but do not begin as an image file does.
    data = jpeg_bytes(photo(0))
    assert image_of({"__key__": "000000", "jpg": data, "cls": b"3", "json": b'{"a": 1}'}) is data
