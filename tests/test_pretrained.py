"""load_network: a run folder back to the network it trained, for torchvision, timm and the digits demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from byol_pytorch import load_network
from byol_pytorch.cli import main
from byol_pytorch.export import load_network_state

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

# One optimiser step of 4 images at 16 px: enough for train to write net.pt and run.json.
ONE_STEP = ["--steps", "1", "--batch-size", "4", "--image-size", "16", "--num-workers", "0",
            "--projection-hidden-size", "16", "--knn-every", "0", "--mixed-precision", "no", "--threads", "1",
            "--no-progress", "--no-final-eval"]


def _photos(folder: Path, count: int = 6) -> Path:
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for i in range(count):
        pixels = (torch.rand(20, 20, 3, generator=generator) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return folder


def _train(run: Path, *flags: str) -> dict:
    assert main(["train", *ONE_STEP, *flags, "--out", str(run)]) == 0
    return json.loads((run / "run.json").read_text())


def _assert_round_trip(run: Path, classes: int) -> torch.nn.Module:
    rng = torch.get_rng_state()
    net = load_network(run)
    assert torch.equal(torch.get_rng_state(), rng)  # building the model drew nothing from the caller's RNG
    saved = load_network_state(run / "net.safetensors")
    state = net.state_dict()
    assert state.keys() == saved.keys()
    assert all(torch.equal(state[k].cpu(), saved[k]) for k in saved)
    assert net.eval()(torch.rand(2, 3, 16, 16)).shape == (2, classes)  # the head is there
    same = load_network(run / "net.pt").state_dict()
    assert all(torch.equal(same[k], saved[k]) for k in saved)
    return net


def test_the_digits_demo_loads_with_its_ten_class_head_and_small_image_stem(tmp_path: Path) -> None:
    spec = _train(tmp_path / "run", "--small-image-stem")
    assert (spec["num_classes"], spec["small_image_stem"]) == (10, True)
    net = _assert_round_trip(tmp_path / "run", 10)
    assert net.conv1.kernel_size == (3, 3) and isinstance(net.maxpool, torch.nn.Identity)


def test_a_torchvision_folder_run_loads_with_its_thousand_class_head(tmp_path: Path) -> None:
    spec = _train(tmp_path / "run", "--data", str(_photos(tmp_path / "photos")), "--model", "resnet18")
    assert (spec["source"], spec["num_classes"]) == ("torchvision", 1000)
    _assert_round_trip(tmp_path / "run", 1000)


def test_a_timm_run_loads(tmp_path: Path) -> None:
    pytest.importorskip("timm")
    spec = _train(tmp_path / "run", "--data", str(_photos(tmp_path / "photos")), "--model", "timm:resnet18")
    assert spec["source"] == "timm"
    net = _assert_round_trip(tmp_path / "run", 1000)
    assert type(net).__module__.startswith("timm.")


def test_what_is_not_a_run_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        load_network(tmp_path / "missing")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "run.json").write_text(json.dumps({"model": "resnet18", "image_size": 16}))
    with pytest.raises(FileNotFoundError, match="net.pt missing"):
        load_network(tmp_path / "half")
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "half" / "net.pt")
    with pytest.raises(ValueError, match=r"does not fit the resnet18 of run.json: missing keys conv1.weight"):
        load_network(tmp_path / "half")
    torch.save({"learner": {}, "optimizer": {}}, tmp_path / "half" / "net.pt")
    with pytest.raises(ValueError, match="full training checkpoint"):
        load_network(tmp_path / "half")
    (tmp_path / "half" / "run.json").write_text(json.dumps({"model": "no_such_net", "image_size": 16}))
    torch.save({}, tmp_path / "half" / "net.pt")
    with pytest.raises(ValueError, match="unknown model 'no_such_net'"):
        load_network(tmp_path / "half")
