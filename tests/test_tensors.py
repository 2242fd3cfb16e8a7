"""Items to image tensors and batches (byol_pytorch/data/formats/tensors.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from byol_pytorch.data import collate_images, to_image_tensor


def _noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_uint8_tensor_is_scaled_exactly() -> None:
    values = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16)
    image = to_image_tensor(values)
    assert image.dtype == torch.float32
    assert image.shape == (1, 16, 16)
    assert torch.equal(image, values.to(torch.float32) / 255.0)
    assert image.min() == 0.0 and image.max() == 1.0


def test_float_tensor_is_kept_as_is() -> None:
    values = torch.rand(3, 5, 7)
    assert torch.equal(to_image_tensor(values), values)
    as_double = to_image_tensor(values.double())
    assert as_double.dtype == torch.float32
    assert torch.allclose(as_double, values)


def test_two_dimensional_tensor_gets_a_channel() -> None:
    image = to_image_tensor(torch.rand(6, 4))
    assert image.shape == (1, 6, 4)


def test_float_tensor_outside_unit_range_warns() -> None:
    with pytest.warns(UserWarning, match=r"expected \[0, 1\]"):
        image = to_image_tensor(torch.full((3, 4, 4), 200.0))
    assert image.max() == 200.0  # warned, not rescaled


def test_channels_last_tensor_warns() -> None:
    with pytest.warns(UserWarning, match="channels-last"):
        to_image_tensor(torch.rand(8, 8, 3))


@pytest.mark.parametrize(
    ("mode", "channels"),
    [("L", 1), ("RGB", 3), ("RGBA", 4), ("P", 3), ("LA", 3), ("CMYK", 3), ("1", 3)],
)
def test_pil_modes(mode: str, channels: int) -> None:
    image = _noise_image(9, 5).convert(mode)
    tensor = to_image_tensor(image)
    assert tensor.dtype == torch.float32
    assert tensor.shape == (channels, 5, 9)
    assert 0.0 <= tensor.min() and tensor.max() <= 1.0


def test_pil_values_are_exact() -> None:
    pil = _noise_image(9, 5)
    expected = torch.from_numpy(np.array(pil)).permute(2, 0, 1).float() / 255.0
    assert torch.equal(to_image_tensor(pil), expected)
    gray = pil.convert("L")
    assert torch.equal(to_image_tensor(gray)[0], torch.from_numpy(np.array(gray)).float() / 255.0)


def test_palette_with_transparency_becomes_rgb_without_warning() -> None:
    pil = _noise_image(6, 6).convert("P")
    pil.info["transparency"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = to_image_tensor(pil)
    assert tensor.shape == (3, 6, 6)


def test_sixteen_bit_pil_image_is_not_clipped() -> None:
    values = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    tensor = to_image_tensor(Image.fromarray(values))
    assert tensor.shape == (1, 2, 2)
    assert torch.allclose(tensor[0], torch.from_numpy(values.astype(np.float32) / 65535.0))


def test_numpy_arrays() -> None:
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    image = to_image_tensor(hwc)
    assert image.shape == (3, 5, 7) and image.dtype == torch.float32
    assert torch.equal(image, torch.from_numpy(hwc).permute(2, 0, 1).float() / 255.0)

    hw = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    assert torch.equal(to_image_tensor(hw), torch.from_numpy(hw).float().unsqueeze(0) / 255.0)

    as_float = rng.random((5, 7, 1))
    image = to_image_tensor(as_float)
    assert image.shape == (1, 5, 7) and image.dtype == torch.float32
    assert torch.allclose(image[0], torch.from_numpy(as_float[:, :, 0]).float())


def test_numpy_result_does_not_alias_the_array() -> None:
    array = np.zeros((4, 4, 3), dtype=np.float32)
    image = to_image_tensor(array)
    image += 0.5
    assert array.max() == 0.0


@pytest.mark.parametrize("container", [tuple, list])
def test_label_is_dropped(container: type) -> None:
    image = torch.rand(3, 4, 4)
    assert torch.equal(to_image_tensor(container([image, 7])), image)
    assert torch.equal(to_image_tensor(container([image, "cat"])), image)


# A dict is an item kind of its own (tests/test_items.py): one without an image names its keys.
@pytest.mark.parametrize(("item", "type_name"), [("image.png", "str"), (3, "int"), ({1, 2}, "set")])
def test_unsupported_type_is_named(item: object, type_name: str) -> None:
    with pytest.raises(TypeError, match=type_name):
        to_image_tensor(item)


def test_unsupported_dtype_and_rank() -> None:
    with pytest.raises(TypeError, match="int64"):
        to_image_tensor(torch.zeros(3, 4, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match="int32"):
        to_image_tensor(np.zeros((4, 4), dtype=np.int32))
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 4\)"):
        to_image_tensor(torch.rand(2, 3, 4, 4))


def test_collate_mixed_items() -> None:
    items = [
        torch.rand(3, 8, 8),
        (torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8), 1),
        _noise_image(8, 8),
        np.zeros((8, 8, 3), dtype=np.uint8),
    ]
    batch = collate_images(items)
    assert batch.shape == (4, 3, 8, 8)
    assert batch.dtype == torch.float32


def test_collate_mismatched_shapes_names_them() -> None:
    items = [torch.rand(3, 8, 8), torch.rand(3, 9, 9), torch.rand(3, 8, 8)]
    with pytest.raises(ValueError) as info:
        collate_images(items)
    message = str(info.value)
    assert "(3, 8, 8)" in message and "(3, 9, 9)" in message
    assert "one size" in message and "ImageFolderDataset" in message


def test_collate_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        collate_images([])
