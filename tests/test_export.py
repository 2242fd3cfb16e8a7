"""net.pt and net.safetensors: written together and atomically, equal, read back either way."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from byol_pytorch import BYOLTrainer, MockDataset
from byol_pytorch.cli import main
from byol_pytorch.export import load_network_state, plain_tensors, save_network

from .conftest import assert_same_state, tiny_cnn

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


class Tied(nn.Module):
    """An embedding tied to the output layer, and a transposed (non-contiguous) buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.out = nn.Linear(3, 5, bias=False)
        self.out.weight = self.embed.weight
        self.register_buffer("transposed", torch.arange(6.0).reshape(2, 3).t())


def test_tied_and_non_contiguous_tensors_are_saved_as_copies(tmp_path: Path) -> None:
    net = Tied()
    state = net.state_dict()
    assert not state["transposed"].is_contiguous()
    copies = plain_tensors(state)
    assert copies["embed.weight"].data_ptr() != copies["out.weight"].data_ptr()
    pt, st = save_network(state, tmp_path)
    assert (pt.name, st.name) == ("net.pt", "net.safetensors")
    assert_same_state(load_file(st), {k: v.contiguous() for k, v in state.items()})
    assert_same_state(load_network_state(pt), load_network_state(st))
    fresh = Tied()
    fresh.load_state_dict(load_network_state(st))
    assert fresh.out.weight is fresh.embed.weight and torch.equal(fresh.out.weight, net.embed.weight)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left


def test_a_corrupt_safetensors_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "net.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="net.safetensors is not a readable safetensors file"):
        load_network_state(tmp_path / "net.safetensors")


def test_trainer_writes_both_files_with_the_same_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    trainer = BYOLTrainer(tiny_cnn(), dataset=MockDataset(16, 16), image_size=16, hidden_layer="flatten",
                          projection_size=8, projection_hidden_size=16, num_workers=0, mixed_precision="no",
                          progress=False, batch_size=4, num_train_steps=2, output_dir=str(tmp_path / "run"),
                          channels_last=True)
    net = trainer()
    from_pt = torch.load(tmp_path / "run" / "net.pt", weights_only=True)
    from_st = load_file(tmp_path / "run" / "net.safetensors")
    assert_same_state(from_pt, from_st)
    assert_same_state(from_st, {k: v.contiguous() for k, v in net.state_dict().items()})


def test_eval_reads_a_run_folder_that_has_only_net_safetensors(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    flags = ["--steps", "2", "--batch-size", "8", "--image-size", "16", "--num-workers", "0",
             "--projection-hidden-size", "32", "--knn-every", "0", "--mixed-precision", "no", "--threads", "1",
             "--no-small-image-stem", "--no-progress", "--no-final-eval"]
    assert main(["train", *flags, "--out", str(run)]) == 0
    assert_same_state(torch.load(run / "net.pt", weights_only=True), load_file(run / "net.safetensors"))
    assert "net.safetensors" in capsys.readouterr().out
    only_st = tmp_path / "only-safetensors"
    shutil.copytree(run, only_st)
    (only_st / "net.pt").unlink()
    scores = []
    for checkpoint in (run, only_st, only_st / "net.safetensors"):
        assert main(["eval", "--checkpoint", str(checkpoint), "--k", "5", "--no-progress", "--threads", "1",
                     "--json"]) == 0
        scores.append(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores[0] == scores[1].replace(str(only_st), str(run)) == scores[2].replace(str(only_st), str(run))
