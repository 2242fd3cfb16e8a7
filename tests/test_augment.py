from __future__ import annotations

import numpy as np
import pytest
import torch

from byol_pytorch.model.augment import (
    IMAGENET_MEAN,
    BYOLAugmentation,
    Normalize,
    as_size,
    blur_kernel_size,
    default_crop_scale,
    digit_augmentations,
    random_gaussian_blur,
)


def test_each_image_of_a_batch_gets_its_own_crop() -> None:
    # One smooth image repeated: identical outputs would mean one draw for the batch.
    ramp = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(8, 3, 32, 32).contiguous()
    out = BYOLAugmentation(16, view=1)(ramp)
    assert out.shape == (8, 3, 16, 16)
    distinct = {tuple(img.flatten()[:64].round(decimals=4).tolist()) for img in out}
    assert len(distinct) == 8


def test_views_follow_the_paper() -> None:
    view_1, view_2 = BYOLAugmentation(224, view=1), BYOLAugmentation(224, view=2)
    assert (view_1.colour.blur_p, view_1.colour.solarize_p) == (1.0, 0.0)
    assert (view_2.colour.blur_p, view_2.colour.solarize_p) == pytest.approx((0.1, 0.2))
    for view in (view_1, view_2):
        colour = view.colour
        assert (colour.jitter, colour.jitter_p, colour.grayscale_p) == ((0.4, 0.4, 0.2, 0.1), 0.8, 0.2)
        assert (colour.blur_kernel, colour.blur_sigma) == (23, (0.1, 2.0))
    crop = view_1.geometric[0]
    assert crop.flags["size"] == (224, 224)
    assert tuple(float(s) for s in crop._param_generator.scale) == pytest.approx((0.08, 1.0))
    assert blur_kernel_size(224) == 23


def test_small_images_get_a_gentler_crop_and_a_small_kernel() -> None:
    assert default_crop_scale(32) == (0.2, 1.0)
    assert default_crop_scale(96) == (0.08, 1.0)
    assert blur_kernel_size(32) == 3 and blur_kernel_size((64, 128)) == 7


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_any_channel_count_stays_in_range(channels: int) -> None:
    x = torch.rand(4, channels, 20, 24)
    out = BYOLAugmentation((12, 10), view=2)(x)
    assert out.shape == (4, channels, 12, 10)
    assert out.min() >= 0 and out.max() <= 1


def test_fourth_channel_is_not_colour_jittered() -> None:
    aug = BYOLAugmentation(16, view=2)
    x = torch.rand(64, 4, 16, 16)
    out = aug.photometric(x)
    # Only blur (p 0.1) and solarize (p 0.2) reach the fourth channel: most images keep it exactly.
    kept = (out[:, 3] == x[:, 3]).flatten(1).all(1)
    changed = (out[:, :3] != x[:, :3]).flatten(1).any(1)
    assert int(kept.sum()) >= 32 and bool(changed[kept].float().mean() > 0.5)


def test_normalize_adapts_to_channels() -> None:
    x = torch.full((2, 3, 4, 4), 0.5)
    out = Normalize()(x)
    assert out[0, 0, 0, 0].item() == pytest.approx((0.5 - IMAGENET_MEAN[0]) / 0.229)
    assert Normalize()(torch.full((1, 1, 2, 2), 0.449)).abs().max() < 1e-6
    with pytest.raises(ValueError, match="2 channel means but the images have 3"):
        Normalize((0.5, 0.5), (0.2, 0.2))(x)


@pytest.mark.parametrize(
    ("image_size", "expected"), [(5, (5, 5)), ((3, 7), (3, 7)), ([4, 2], (4, 2)), (np.int64(6), (6, 6))]
)
def test_sizes_become_height_and_width(image_size: object, expected: tuple[int, int]) -> None:
    assert as_size(image_size) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("image_size", [True, (True, 4), (4.0, 4), (1, 2, 3), "ab", None])
def test_sizes_that_are_not_ints_are_refused(image_size: object) -> None:
    with pytest.raises(TypeError, match=r"image_size must be an int or \(height, width\)"):
        as_size(image_size)  # type: ignore[arg-type]


def test_the_smallest_side_is_the_callers() -> None:
    assert as_size(1, minimum=1) == (1, 1)  # a dataset may hold 1-pixel images
    with pytest.raises(ValueError, match=r"crop must be at least 1 pixel on each side, got \(4, 0\)"):
        as_size((4, 0), minimum=1, name="crop")


def test_every_pipeline_blurs_with_the_papers_blur() -> None:
    digit_view_1, digit_view_2 = digit_augmentations(64)
    paper_view_1, paper_view_2 = BYOLAugmentation(64, view=1), BYOLAugmentation(64, view=2)
    blurs = [digit_view_1[-1], digit_view_2[-2]]
    assert [blur.p for blur in blurs] == pytest.approx([1.0, 0.1])
    for blur in blurs:
        assert blur.flags["kernel_size"] == (blur_kernel_size(64),) * 2 == (7, 7)
        assert tuple(float(s) for s in blur._param_generator.sigma) == pytest.approx(paper_view_1.colour.blur_sigma)
    assert [view.colour.blur_p for view in (paper_view_1, paper_view_2)] == pytest.approx([1.0, 0.1])
    assert paper_view_1.colour.blur_kernel == paper_view_2.colour.blur_kernel == 7
    assert random_gaussian_blur(64, p=1.0, kernel=5).flags["kernel_size"] == (5, 5)


def test_bad_sizes_are_named() -> None:
    with pytest.raises(ValueError, match="at least 2 pixels.*1"):
        as_size(1)
    with pytest.raises(TypeError, match=r"int or \(height, width\), got 'big'"):
        as_size("big")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="view must be 1 or 2, got 3"):
        BYOLAugmentation(16, view=3)


def test_digit_views_keep_the_character_unmirrored_and_in_range() -> None:
    # A left-to-right ramp: a horizontal flip would make the right half darker than the left.
    torch.manual_seed(0)
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(32, 3, 16, 16).contiguous()
    view_1, view_2 = digit_augmentations(16)
    out_1, out_2 = view_1(ramp), view_2(ramp)
    assert out_1.shape == out_2.shape == (32, 3, 16, 16)
    assert out_1.min() >= 0.0 and out_1.max() <= 1.0 and out_2.min() >= 0.0 and out_2.max() <= 1.0
    assert bool((out_1[..., 8:].mean(dim=(1, 2, 3)) > out_1[..., :8].mean(dim=(1, 2, 3))).all())
    assert len({tuple(img.flatten()[:32].round(decimals=4).tolist()) for img in out_1}) == 32
