"""The batched colour augmentation against torchvision's per-image definitions and draws."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from matplotlib.colors import rgb_to_hsv
from scipy import stats

from byol_pytorch.model import photometric
from byol_pytorch.model.augment import BYOLAugmentation
from byol_pytorch.model.colour import shift_hue_
from byol_pytorch.model.photometric import PhotometricAugmentation, PhotometricDraw

CUDA = pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])
# Below this p-value a two-sample test says the distributions differ (a 1-in-10,000 false alarm per test).
P_MIN = 1e-4


def _everything(kernel: int = 5) -> PhotometricAugmentation:
    """Every operation likely, so that one batch exercises every combination."""
    return PhotometricAugmentation(blur_p=0.5, solarize_p=0.5, blur_kernel=kernel)


def _colourful(batch: int, size: int = 8, seed: int = 0) -> torch.Tensor:
    # Saturated, varied colours: hue and saturation changes move them a lot, gray images would hide them.
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=generator) ** 2


def _reference(x: torch.Tensor, draw: PhotometricDraw, aug: PhotometricAugmentation) -> torch.Tensor:
    """torchvision's functional operations image by image, with the draws of ``draw``."""
    out = []
    order = draw.permutation()
    for i, image in enumerate(x):
        if draw.jitter[i]:
            ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
            factors = draw.factors[i].tolist()
            for op in order[i].tolist():
                image = ops[op](image, factors[op])
        if draw.grayscale[i]:
            image = TF.rgb_to_grayscale(image, num_output_channels=3)
        if draw.blur[i]:
            sigma = float(draw.sigma[i])
            image = TF.gaussian_blur(image, [aug.blur_kernel] * 2, [sigma, sigma])
        if draw.solarize[i]:
            image = TF.solarize(image, 0.5)
        out.append(image)
    return torch.stack(out)


def _every_order(draw: PhotometricDraw) -> PhotometricDraw:
    """``draw`` with its first 48 images jittered in each of the 24 orders twice."""
    orders = torch.tensor(list(itertools.permutations(range(3)))).repeat(8, 1)  # 6 orders x 4 hue slots x 2
    hue_slots = torch.arange(4).repeat_interleave(6).repeat(2)
    jitter = draw.jitter.clone()
    jitter[:48] = True
    return dataclasses.replace(draw, jitter=jitter, order=torch.cat([orders, draw.order[48:]]),
                               hue_slot=torch.cat([hue_slots, draw.hue_slot[48:]]))


@pytest.mark.parametrize("batched", [False, True], ids=["in runs", "batched"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_a_batch_equals_torchvision_image_by_image_with_the_same_draws(channels_last: bool, batched: bool) -> None:
    aug = _everything()
    x = _colourful(64, size=10)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    draw = _every_order(aug.draw(64, "cpu", torch.Generator().manual_seed(1)))
    assert len({tuple(p) for p in draw.permutation().tolist()}) == 24
    assert all(0 < float(flag.float().mean()) < 1 for flag in (draw.jitter, draw.grayscale, draw.blur, draw.solarize))
    out = aug.apply(x, draw, batched=batched)
    torch.testing.assert_close(out, _reference(x, draw, aug), atol=1e-5, rtol=0)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last


@pytest.mark.parametrize(("channels", "dtype"), [(3, torch.float32), (4, torch.float32), (3, torch.bfloat16)])
def test_the_cpus_runs_give_the_batched_result(monkeypatch: pytest.MonkeyPatch, channels: int,
                                               dtype: torch.dtype) -> None:
    aug, x = _everything(), torch.rand(96, channels, 8, 8).to(dtype)
    draw = aug.draw(96, "cpu", torch.Generator().manual_seed(2))
    batched = aug.apply(x, draw, batched=True)
    tolerance = 1e-5 if dtype == torch.float32 else 3e-2  # bfloat16: a few units in the last place
    torch.testing.assert_close(aug.apply(x, draw, batched=False), batched, atol=tolerance, rtol=0)
    monkeypatch.setattr(photometric, "CPU_CHUNK_BYTES", 3 * x[0].numel() * x.element_size())  # runs of 3 at most
    torch.testing.assert_close(aug.apply(x, draw, batched=False), batched, atol=tolerance, rtol=0)


def _torchvision_draws(count: int) -> dict[str, list]:
    jitter, blur = T.ColorJitter(0.4, 0.4, 0.2, 0.1), T.GaussianBlur(5, sigma=(0.1, 2.0))
    image = [torch.zeros(3, 2, 2)]
    draws: dict[str, list] = {"order": [], "brightness": [], "contrast": [], "saturation": [], "hue": [], "sigma": []}
    for _ in range(count):
        params = jitter.make_params(image)
        draws["order"].append(tuple(params["fn_idx"].tolist()))
        for name in ("brightness", "contrast", "saturation", "hue"):
            draws[name].append(float(params[f"{name}_factor"]))
        draws["sigma"].append(blur.make_params(image)["sigma"][0])
    return draws


def test_factors_orders_and_sigma_are_drawn_as_torchvision_draws_them() -> None:
    torch.manual_seed(0)
    count = 4000
    ours = PhotometricAugmentation(blur_p=1.0, solarize_p=0.0, blur_kernel=5).draw(count, "cpu")
    reference = _torchvision_draws(count)
    bounds = {"brightness": (0.6, 1.4), "contrast": (0.6, 1.4), "saturation": (0.8, 1.2), "hue": (-0.1, 0.1),
              "sigma": (0.1, 2.0)}
    columns = dict(zip(("brightness", "contrast", "saturation", "hue"), ours.factors.T), sigma=ours.sigma)
    for name, (low, high) in bounds.items():
        values = columns[name].double()
        # The whole range is used, nothing outside it (a uniform's extremes of 4,000 draws lie within 0.5 %).
        assert low <= float(values.min()) < low + 0.005 * (high - low), name
        assert high - 0.005 * (high - low) < float(values.max()) <= high, name
        assert stats.ks_2samp(values.numpy(), reference[name]).pvalue > P_MIN, name
        assert stats.kstest(values.numpy(), stats.uniform(low, high - low).cdf).pvalue > P_MIN, name
    # Each of the 24 orders of the four operations about equally often, as torchvision's randperm.
    orders = sorted(itertools.permutations(range(4)))
    counts = [[sum(1 for o in map(tuple, ours.permutation().tolist()) if o == order) for order in orders],
              [reference["order"].count(order) for order in orders]]
    assert min(counts[0]) > 0 and stats.chisquare(counts[0]).pvalue > P_MIN
    assert stats.chi2_contingency(counts).pvalue > P_MIN


def _single(op: str, p: float) -> PhotometricAugmentation:
    probabilities = {"jitter_p": 0.0, "grayscale_p": 0.0, "blur_p": 0.0, "solarize_p": 0.0, f"{op}_p": p}
    return PhotometricAugmentation(blur_kernel=3, **probabilities)


@pytest.mark.parametrize(("view", "op", "p"), [
    (1, "jitter", 0.8), (1, "grayscale", 0.2), (1, "blur", 1.0), (1, "solarize", 0.0),
    (2, "jitter", 0.8), (2, "grayscale", 0.2), (2, "blur", 0.1), (2, "solarize", 0.2),
])
def test_each_view_applies_each_operation_with_the_papers_probability(view: int, op: str, p: float) -> None:
    colour = BYOLAugmentation(8, view=view).colour
    assert getattr(colour, f"{op}_p") == pytest.approx(p)
    torch.manual_seed(view)
    count = 3000
    x = _colourful(count, size=4) * 0.5 + 0.25  # colourful, and above the solarize threshold somewhere
    aug = _single(op, p)
    draw = aug.draw(count, "cpu")
    drawn = getattr(draw, op)
    assert abs(drawn.double().mean().item() - p) <= 5 * math.sqrt(p * (1 - p) / count)
    # The images that drew it changed, the others did not (the hue rotation by 0 may move the last bits).
    changed = ((aug.apply(x, draw) - x).abs() > 1e-5).flatten(1).any(1)
    if op == "blur":  # a sigma near 0.1 px puts e^-50 of the weight on the neighbours: no visible change
        drawn = drawn & (draw.sigma > 0.3)
        changed = changed & (draw.sigma > 0.3)
    assert torch.equal(changed, drawn)


def test_views_are_asymmetric_as_in_the_paper() -> None:
    # How many images of each view the blur and the solarize changed: the same draws with one of them off.
    torch.manual_seed(0)
    count = 1200
    x = _colourful(count, size=8) * 0.3 + 0.7  # bright: every image has values above the threshold
    changed = {}
    for view in (1, 2):
        colour = BYOLAugmentation(8, view=view).colour
        draw = colour.draw(count, "cpu")
        out = colour.apply(x, draw)
        for op in ("blur", "solarize"):
            without = colour.apply(x, dataclasses.replace(draw, **{op: torch.zeros(count, dtype=torch.bool)}))
            changed[view, op] = (out != without).flatten(1).any(1).double().mean().item()
    assert changed[1, "solarize"] == 0.0 and abs(changed[2, "solarize"] - 0.2) < 0.045
    # A blur with a sigma under about 0.25 px changes no value of an 8-px image: 92 % of view 1's blurs show.
    assert 0.88 < changed[1, "blur"] <= 1.0 and abs(changed[2, "blur"] - 0.1 * 0.92) < 0.035


def test_hue_shifts_wrap_around_the_colour_circle() -> None:
    primaries = torch.eye(3).view(3, 3, 1, 1)  # red, green, blue
    third = torch.full((3,), 1 / 3)
    torch.testing.assert_close(shift_hue_(primaries.clone(), third), primaries.roll(-1, 0))  # red -> green
    torch.testing.assert_close(shift_hue_(primaries.clone(), -third), primaries.roll(1, 0))  # red -> blue
    # Hues just either side of red, shifted across it both ways, against torchvision.
    near_red = torch.tensor([[1.0, 0.05, 0.0], [1.0, 0.0, 0.05], [0.9, 0.3, 0.1], [0.8, 0.1, 0.5]]).view(4, 3, 1, 1)
    for shift in (-0.1, -0.05, 0.05, 0.1, 0.5, -0.5):
        expected = torch.stack([TF.adjust_hue(image, shift) for image in near_red])
        out = shift_hue_(near_red.clone(), torch.full((4,), shift))
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert torch.equal(shift_hue_(near_red.clone(), torch.zeros(4)).sub(near_red).abs().lt(1e-6), torch.ones_like(
        near_red, dtype=torch.bool))


def _hue(rgb: torch.Tensor) -> torch.Tensor:
    """Hue in turns of ``(N, 3)`` colours, from matplotlib (an implementation apart from both pipelines)."""
    return torch.from_numpy(rgb_to_hsv(rgb.clamp(0, 1).numpy())[:, 0])


def test_outputs_match_a_torchvision_pipeline_in_distribution() -> None:
    # The same image, 400 times, through both pipelines: brightness, contrast, saturation, hue and
    # sharpness of the results come out distributed alike.
    torch.manual_seed(0)
    count = 400
    image = _colourful(1, size=9)[0]
    image[:, :, :4] = torch.tensor([0.9, 0.5, 0.2]).view(3, 1, 1)  # an orange patch, hue 0.06 turn
    image[:, 4, 6] = 1.0  # a bright dot: how much of it stays says how hard the image was blurred
    ours = PhotometricAugmentation(blur_p=0.5, solarize_p=0.2, blur_kernel=5)(image.expand(count, -1, -1, -1))
    reference_pipeline = T.Compose([
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8), T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(5, sigma=(0.1, 2.0))], p=0.5), T.RandomSolarize(0.5, p=0.2),
    ])
    reference = torch.stack([reference_pipeline(image) for _ in range(count)])
    luma = (lambda out: TF.rgb_to_grayscale(out).flatten(1))
    features = {
        "brightness": lambda out: luma(out).mean(1),
        "contrast": lambda out: luma(out).std(1),
        "saturation": lambda out: (out.amax(1) - out.amin(1)).mean((1, 2)),
        "hue": lambda out: (_hue(out[:, :, 2:7, :2].mean((2, 3))) + 0.5) % 1,  # the patch's core; 0.5 is red
        "sharpness": lambda out: out[:, :, 4, 6].mean(1) - out[:, :, 3:6, 5:8].mean((1, 2, 3)),
    }
    for name, feature in features.items():
        assert stats.ks_2samp(feature(ours).numpy(), feature(reference).numpy()).pvalue > P_MIN, name


def test_every_image_of_a_batch_draws_for_itself() -> None:
    torch.manual_seed(0)
    x = _colourful(1, size=8).expand(256, -1, -1, -1)
    out = _everything()(x)
    assert len({tuple(image.flatten().tolist()) for image in out}) > 200
    draw = _everything().draw(5000, "cpu")
    # Neighbours in the batch are uncorrelated, and no column of the draw follows another.
    for values in (draw.factors.T, draw.sigma.unsqueeze(0)):
        for column in values:
            assert abs(float(torch.corrcoef(torch.stack([column[:-1], column[1:]]))[0, 1])) < 0.06
    assert abs(float(torch.corrcoef(torch.stack([draw.factors[:, 0], draw.sigma]))[0, 1])) < 0.06


def test_bfloat16_stays_close_to_float32() -> None:
    aug, x = _everything(), _colourful(128, size=12)
    draw = aug.draw(128, "cpu", torch.Generator().manual_seed(3))
    full, half = aug.apply(x, draw), aug.apply(x.bfloat16(), draw)
    assert half.dtype == torch.bfloat16
    error = (half.float() - full).abs()
    assert float(error.mean()) < 4e-3 and float(error.max()) < 3e-2


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_outputs_stay_in_range_and_follow_the_input(device: str) -> None:
    aug = _everything()
    torch.manual_seed(0)
    # Extremes: black, white, pure colours and noise.
    x = torch.cat([torch.zeros(8, 3, 8, 8), torch.ones(8, 3, 8, 8), torch.eye(3).repeat(3, 1)[:8, :, None, None]
                   .expand(-1, -1, 8, 8), torch.rand(40, 3, 8, 8)]).to(device)
    for dtype in (torch.float32, torch.bfloat16):
        out = aug(x.to(dtype))
        assert out.dtype == dtype and out.device == x.device and out.shape == x.shape
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0 and bool(torch.isfinite(out).all())


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_the_same_seed_gives_the_same_views(device: str) -> None:
    aug, x = _everything(), _colourful(32).to(device)
    torch.manual_seed(5)
    first = aug(x)
    torch.manual_seed(5)
    assert torch.equal(aug(x), first)
    generator = torch.Generator(device).manual_seed(5)
    again = torch.Generator(device).manual_seed(5)
    assert torch.equal(aug(x, generator), aug(x, again)) and not torch.equal(aug(x), first)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_the_cpu_for_the_same_draws() -> None:
    aug, x = _everything(), _colourful(64, size=16)
    draw = aug.draw(64, "cpu")
    on_cuda = PhotometricDraw(**{name: value.cuda() for name, value in vars(draw).items()})
    torch.testing.assert_close(aug.apply(x.cuda(), on_cuda).cpu(), aug.apply(x, draw), atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels", [1, 4])
def test_other_channel_counts(channels: int) -> None:
    aug, x = _everything(), torch.rand(64, channels, 8, 8)
    draw = aug.draw(64, "cpu")
    out = aug.apply(x, draw)
    if channels == 4:  # colour on the first three; the fourth only blurred and solarized
        rgb = PhotometricAugmentation(0.5, 0.5, 5).apply(x[:, :3], draw)
        torch.testing.assert_close(out[:, :3], rgb)
        untouched = ~draw.blur & ~draw.solarize
        assert torch.equal(out[untouched, 3], x[untouched, 3])
    else:  # no colour: images that drew no blur and no solarize come back as they were
        untouched = ~draw.blur & ~draw.solarize
        assert torch.equal(out[untouched], x[untouched]) and not torch.equal(out, x)


def test_bad_settings_and_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="blur_p must be a probability in \\[0, 1\\], got 1.5"):
        PhotometricAugmentation(1.5, 0.0, 5)
    with pytest.raises(ValueError, match="blur_kernel must be a positive odd int, got 4"):
        PhotometricAugmentation(1.0, 0.0, 4)
    with pytest.raises(ValueError, match="hue <= 0.5"):
        PhotometricAugmentation(1.0, 0.0, 5, jitter=(0.4, 0.4, 0.2, 0.7))
    with pytest.raises(TypeError, match="floating-point images, got shape \\(2, 3, 8, 8\\) of torch.uint8"):
        _everything()(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="a blur kernel of 23 needs images of at least 12 px a side, got 8x8"):
        PhotometricAugmentation(1.0, 0.0, 23)(torch.rand(2, 3, 8, 8))


@pytest.mark.parametrize("batched", [False, True], ids=["in runs", "batched"])
def test_in_place_gives_the_same_views_and_the_default_leaves_the_input(batched: bool) -> None:
    aug, x = _everything(), _colourful(24)
    draw = aug.draw(24, "cpu", torch.Generator().manual_seed(4))
    kept = x.clone()
    copied = aug.apply(x, draw, batched=batched)
    assert torch.equal(x, kept) and not torch.equal(copied, x)
    mine = x.clone()
    assert aug.apply(mine, draw, batched=batched, inplace=True) is mine and torch.equal(mine, copied)


def test_a_colour_module_put_in_place_of_ours_takes_the_images_alone() -> None:
    view = BYOLAugmentation(8, view=1)
    view.colour = torch.nn.Sequential(torch.nn.Identity())  # its forward takes no inplace=
    x = _colourful(4)
    assert torch.equal(view.photometric(x), x)
    assert view(x).shape == (4, 3, 8, 8)
