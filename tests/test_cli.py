"""The byol-pytorch command line: train, eval and embed end to end on tiny settings, and its errors."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from byol_pytorch import TrainerConfig
from byol_pytorch.cli import build_parser, main
from byol_pytorch.cli.networks import apply_small_image_stem, default_hidden_layer, resolve_small_stem

from .cli_helpers import Capture as _Capture
from .cli_helpers import assert_usage_error as _assert_usage_error
from .cli_helpers import reset_accelerate as _reset_accelerate
from .cli_helpers import tiny

TINY = tiny()


# Accelerate keeps process-wide state between trainers; --threads changes torch's thread count.
pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One tiny training run on the built-in digits, shared by the tests that read it."""
    threads = torch.get_num_threads()
    run = tmp_path_factory.mktemp("cli") / "run"
    _reset_accelerate()
    capture = _Capture()
    with capture:
        code = main(["train", *TINY, "--out", str(run)])
    _reset_accelerate()
    torch.set_num_threads(threads)
    assert code == 0, capture.err
    return run, capture.out


def _write_images(folder: Path, layout: dict[str, int], size: int = 20) -> list[Path]:
    """Writes small random PNGs: ``{"sub/folder": count}``; returns their paths."""
    rng = np.random.default_rng(0)
    paths = []
    for sub, count in layout.items():
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            path = folder / sub / f"img{i}.png"
            Image.fromarray(rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)).save(path)
            paths.append(path)
    return paths


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _monitor_knn(net: torch.nn.Module, k: int) -> float:
    """kNN top-1 of ``net``'s avgpool features by the trainer's monitor protocol, on the digits' test split."""
    from byol_pytorch import DigitsDataset, FrozenEncoder
    from byol_pytorch.evaluate import extract_features, half_split_knn_accuracy
    from byol_pytorch.model import Normalize

    encoder = FrozenEncoder(net, "avgpool", normalize=Normalize())
    features, labels = extract_features(encoder, DigitsDataset(16, split="test", return_labels=True))
    return half_split_knn_accuracy(features, labels, k=k)


# -- train ---------------------------------------------------------------------------------------------------------------

def test_train_writes_a_complete_run_folder(trained_run: tuple[Path, str]) -> None:
    run, out = trained_run
    names = {p.name for p in run.iterdir()}
    assert {"run.json", "net.pt", "metrics.jsonl", "summary.json", "report.png",
            "checkpoint-00000002.pt", "checkpoint-00000004.pt"} <= names

    spec = json.loads((run / "run.json").read_text())
    assert spec["model"] == "resnet18" and spec["image_size"] == 16 and spec["hidden_layer"] == "avgpool"
    assert spec["small_image_stem"] is False and spec["channels"] == 3 and spec["augment"] == "digits"

    net = torchvision.models.resnet18(num_classes=spec["num_classes"])
    net.load_state_dict(torch.load(run / "net.pt", weights_only=True))

    summary = json.loads((run / "summary.json").read_text())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert summary["steps"] == 4 and summary["wall_time_s"] > 0 and summary["images_per_second"] > 0
    for metric in ("knn_top1", "linear_probe_top1"):
        assert set(summary[metric]) == {"trained", "random_init"}  # the values: test_eval_on_digits_...
    # The kNN monitor's last figure is the trained network's, recomputed here by the monitor's protocol
    # (half of the digits' test split as bank, half as queries); its baseline is the untrained network's.
    monitor = [r["knn_top1"] for r in records if "knn_top1" in r]
    assert len(monitor) == 2
    torch.manual_seed(0)
    untrained = torchvision.models.resnet18(num_classes=spec["num_classes"])
    assert monitor[-1] == _monitor_knn(net, summary["k"])
    assert summary["knn_monitor_random_init"] == _monitor_knn(untrained, summary["k"])
    assert summary["cpu_threads"] == 1 and summary["processes"] == 1 and summary["mixed_precision"] == "no"
    assert summary["data_wait_s"] >= 0 and 0 <= summary["data_wait_fraction"] <= 1

    with Image.open(run / "report.png") as image:
        image.verify()
    assert (run / "report.png").stat().st_size > 0
    assert any("loss" in r for r in records)
    assert "trained" in out and "random init" in out and "kNN top-1" in out


def test_an_existing_run_folder_is_refused_and_left_untouched(trained_run: tuple[Path, str],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = trained_run
    before = _digest(run)
    _assert_usage_error(main(["train", *TINY, "--out", str(run)]), capsys, "already exists", "--resume")
    assert _digest(run) == before


def test_resume_continues_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", *tiny(steps="2", knn_every="0"), "--augment", "paper", "--no-final-eval",
                 "--out", str(run)]) == 0
    _reset_accelerate()
    spec_before = (run / "run.json").read_text()
    assert json.loads(spec_before)["augment"] == "paper"
    # The model flags may be left out: they come from run.json.
    more = tiny(steps="4", knn_every="0", drop=("--model", "--image-size", "--no-small-image-stem"))
    assert main(["train", *more, "--out", str(run), "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert json.loads((run / "summary.json").read_text())["steps"] == 4
    assert (run / "run.json").read_text() == spec_before
    _reset_accelerate()
    code = main(["train", *tiny(model="resnet34"), "--out", str(run), "--resume"])
    _assert_usage_error(code, capsys, "differs from the run being resumed")


# -- eval and embed ------------------------------------------------------------------------------------------------------

def test_eval_on_digits_prints_trained_and_random_rows(trained_run: tuple[Path, str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = trained_run
    summary = json.loads((run / "summary.json").read_text())
    k = str(summary["k"])
    assert main(["eval", "--checkpoint", str(run), "--k", k, "--no-progress", "--json", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert f"k={k}" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("trained", "random init"))]
    assert [row[0] for row in rows] == ["trained", "random"]
    scores = json.loads(out.strip().splitlines()[-1])
    assert scores["k"] == summary["k"] and set(scores["trained"]) == {"knn_top1", "linear_probe_top1"}
    # The printed table is the JSON's figures, and both are what train wrote (all deterministic).
    for row, key in zip(rows, ("trained", "random_init")):
        assert [float(x) for x in row[-2:]] == [round(scores[key]["knn_top1"], 4),
                                                round(scores[key]["linear_probe_top1"], 4)]
        for metric in ("knn_top1", "linear_probe_top1"):
            assert scores[key][metric] == summary[metric][key], (key, metric)


def test_eval_on_a_labelled_folder(trained_run: tuple[Path, str], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = trained_run
    _write_images(tmp_path / "labelled", {"cats": 4, "dogs": 5})
    # --checkpoint may also name the net.pt of the run
    code = main(["eval", "--checkpoint", str(run / "net.pt"), "--data", str(tmp_path / "labelled"), "--no-progress",
                 "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "5 bank / 4 query images, 2 classes" in out
    assert "trained" in out and "random init" in out


def test_eval_leaves_unreadable_files_out(trained_run: tuple[Path, str], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    run, _ = trained_run
    _write_images(tmp_path / "labelled", {"cats": 4, "dogs": 5})
    (tmp_path / "labelled" / "cats" / "img9.jpg").write_text("not a photo")
    code = main(["eval", "--checkpoint", str(run), "--data", str(tmp_path / "labelled"), "--no-progress",
                 "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    # Five cat files and five dogs, split 3 + 2 per class (seeded): the broken cat fell in the bank,
    # and no neighbour stands in for it.
    assert "5 bank / 4 query images, 2 classes (1 unreadable file left out)" in out, out
    assert [r.getMessage().split(": ")[0] for r in caplog.records if "unreadable" in r.getMessage()] == [
        f"skipped unreadable image {tmp_path / 'labelled' / 'cats' / 'img9.jpg'}"]


@pytest.mark.parametrize("suffix", [".npy", ".pt", ".safetensors", ".parquet"])
def test_embed_writes_one_row_per_image(trained_run: tuple[Path, str], tmp_path: Path, suffix: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = trained_run
    paths = _write_images(tmp_path / "images", {"a": 3, "b/c": 2, ".": 2})
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    (tmp_path / "images" / "a" / "img1b.png").write_bytes(b"")  # unreadable: no row, not listed
    out = tmp_path / f"emb{suffix}"
    assert main(["embed", "--checkpoint", str(run), "--data", str(tmp_path / "images"), "--out", str(out),
                 "--no-progress", "--batch-size", "3", "--threads", "1"]) == 0
    expected = sorted(str(p) for p in paths)
    if suffix == ".npy":
        embeddings = np.load(out)
        files = (tmp_path / "emb.npy.files.txt").read_text().splitlines()
    elif suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(out, framework="pt") as opened:
            embeddings, files = opened.get_tensor("embeddings").numpy(), json.loads(opened.metadata()["files"])
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(out)
        assert table.column_names == ["path", "embedding"]
        embeddings, files = np.array(table["embedding"].to_pylist(), dtype=np.float32), table["path"].to_pylist()
    else:
        saved = torch.load(out, weights_only=True)
        embeddings, files = saved["embeddings"].numpy(), saved["files"]
    assert embeddings.shape == (7, 512) and np.isfinite(embeddings).all()
    assert files == expected
    captured = capsys.readouterr()
    assert "wrote 7 embeddings" in captured.out and "1 unreadable image(s) left out" in captured.err


def test_embed_formats_hold_the_same_vectors(trained_run: tuple[Path, str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    import pyarrow.parquet as pq
    from safetensors.torch import load_file

    run, _ = trained_run
    _write_images(tmp_path / "images", {"x": 3})
    for suffix in (".pt", ".safetensors", ".parquet"):
        assert main(["embed", "--checkpoint", str(run), "--data", str(tmp_path / "images"),
                     "--out", str(tmp_path / f"e{suffix}"), "--no-progress", "--threads", "1"]) == 0
    reference = torch.load(tmp_path / "e.pt", weights_only=True)["embeddings"]
    assert torch.equal(load_file(tmp_path / "e.safetensors")["embeddings"], reference)
    vectors = pq.read_table(tmp_path / "e.parquet")["embedding"].to_pylist()
    assert torch.equal(torch.tensor(vectors, dtype=torch.float32), reference)
    # Without pyarrow, a parquet file is refused before anything is computed, with the install that fixes it.
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else find_spec(name, *a))
    capsys.readouterr()
    code = main(["embed", "--checkpoint", str(run), "--data", str(tmp_path / "images"),
                 "--out", str(tmp_path / "f.parquet")])
    _assert_usage_error(code, capsys, "writing parquet needs pyarrow, which is not installed: pip install pyarrow")
    assert not (tmp_path / "f.parquet").exists()


def test_embed_matches_eval_features(trained_run: tuple[Path, str], tmp_path: Path) -> None:
    """The embedding of an image is the trained network's hidden layer on the normalised image."""
    from byol_pytorch.cli.runs import load_trained, read_run
    from byol_pytorch.data import ImageFolderDataset
    from byol_pytorch.model import HiddenLayerEncoder, Normalize

    run, _ = trained_run
    _write_images(tmp_path / "images", {"x": 2})
    assert main(["embed", "--checkpoint", str(run), "--data", str(tmp_path / "images"),
                 "--out", str(tmp_path / "e.pt"), "--no-progress", "--threads", "1"]) == 0
    _, spec, state = read_run(str(run))
    net = load_trained(spec, state, run).eval()
    images = torch.stack([ImageFolderDataset(tmp_path / "images", 16)[i] for i in range(2)])
    with torch.no_grad():
        expected = HiddenLayerEncoder(net, "avgpool")(Normalize()(images))
    got = torch.load(tmp_path / "e.pt", weights_only=True)["embeddings"]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


# -- bad input -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("extra", "phrases"),
    [
        (["--image-size", "7"], ["--image-size", "8 to 4096"]),
        (["--image-size", "5000"], ["--image-size", "8 to 4096"]),
        (["--image-size", "abc"], ["--image-size", "whole number"]),
        (["--model", "resnet181"], ["unknown model 'resnet181'", "resnet18"]),
        (["--model", "efficientnet_b9"], ["unknown model", "efficientnet_b"]),
        (["--optimizer", "adagrad"], ["--optimizer: invalid choice: 'adagrad'", "'adam', 'adamw', 'sgd', 'lars'"]),
        (["--batch-size", "0"], ["--batch-size must be a positive integer"]),
        (["--bogus-flag"], ["unrecognized arguments: --bogus-flag"]),
        (["--augment", "heavy"], ["--augment", "invalid choice"]),
    ],
)
def test_bad_train_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                         phrases: list[str]) -> None:
    code = main(["train", *TINY, "--out", str(tmp_path / "run"), *extra])
    _assert_usage_error(code, capsys, *phrases)
    assert not (tmp_path / "run").exists()


def test_bad_data_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "run")]
    _assert_usage_error(main(["train", *TINY, "--data", str(tmp_path / "missing"), *out]), capsys,
                        "no such folder")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    _assert_usage_error(main(["train", *TINY, "--data", str(tmp_path / "empty"), *out]), capsys,
                        "no image files found")
    _write_images(tmp_path / "few", {".": 3})
    _assert_usage_error(main(["train", *TINY, "--data", str(tmp_path / "few"), *out]), capsys,
                        "fewer than one batch")
    _write_images(tmp_path / "flat", {".": 9})
    _assert_usage_error(main(["train", *TINY, "--data", str(tmp_path / "flat"), "--eval-data",
                              str(tmp_path / "flat"), *out]), capsys, "one sub-folder of images per class")
    assert not (tmp_path / "run").exists()


def test_defaults_follow_the_data() -> None:
    from byol_pytorch.cli.runs import run_spec

    digits, _ = run_spec(build_parser().parse_args(["train"]), None, "cpu")
    folder, _ = run_spec(build_parser().parse_args(["train", "--data", "photos"]), None, "cpu")
    assert (digits["image_size"], digits["augment"], digits["num_classes"]) == (16, "digits", 10)
    assert (folder["image_size"], folder["augment"], folder["num_classes"]) == (224, "paper", 1000)


def test_train_on_a_folder_scored_on_a_labelled_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_images(tmp_path / "labelled", {"cat": 6, "dog": 6})
    run = tmp_path / "run"
    args = tiny(knn_every="0", steps="2", batch_size="4")
    assert main(["train", *args, "--data", str(tmp_path / "labelled"), "--eval-data", str(tmp_path / "labelled"),
                 "--out", str(run)]) == 0
    spec = json.loads((run / "run.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert spec["augment"] == "paper" and spec["image_size"] == 16 and summary["steps"] == 2
    assert summary["eval_data"] == str(tmp_path / "labelled") and set(summary["knn_top1"]) == {"trained", "random_init"}
    assert "6 bank / 6 query images, 2 classes" in capsys.readouterr().out


def test_bad_checkpoints(trained_run: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = trained_run
    _assert_usage_error(main(["eval", "--checkpoint", str(tmp_path / "nope")]), capsys, "no such run folder")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "run.json").write_text((run / "run.json").read_text())
    _assert_usage_error(main(["eval", "--checkpoint", str(tmp_path / "half")]), capsys, "net.pt missing")
    _write_images(tmp_path / "images", {".": 2})
    for suffix, phrase in ((".csv", "must end in .npy, .pt, .safetensors or .parquet"), (".npy", "net.pt missing")):
        code = main(["embed", "--checkpoint", str(tmp_path / "half"), "--data", str(tmp_path / "images"),
                     "--out", str(tmp_path / f"e{suffix}")])
        _assert_usage_error(code, capsys, phrase)
    code = main(["eval", "--checkpoint", str(run / "checkpoint-00000004.pt")])
    _assert_usage_error(code, capsys, "full training checkpoint", "pass the run folder")
    before = _digest(run)
    code = main(["embed", "--checkpoint", str(run), "--data", str(tmp_path / "images"), "--out", str(run / "net.pt")])
    _assert_usage_error(code, capsys, "would overwrite")
    code = main(["embed", "--checkpoint", str(run), "--data", str(tmp_path / "missing"), "--out",
                 str(tmp_path / "e.npy")])
    _assert_usage_error(code, capsys, "no such folder")
    assert _digest(run) == before


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    _assert_usage_error(main([]), capsys, "required")


# -- the parser ----------------------------------------------------------------------------------------------------------

def test_every_trainer_option_has_a_flag() -> None:
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]  # noqa: SLF001
    flags = {s for action in train._actions for s in action.option_strings}  # noqa: SLF001
    for field in dataclasses.fields(TrainerConfig):
        assert "--" + field.name.replace("_", "-") in flags, field.name
    assert {"--steps", "--lr", "--out", "--data", "--model", "--image-size", "--simsiam", "--hidden-layer",
            "--no-ema-schedule", "--no-progress", "--small-image-stem", "--no-small-image-stem"} <= flags


def test_flags_parse_to_trainer_types() -> None:
    args = build_parser().parse_args([
        "train", "--steps", "7", "--lr", "1e-3", "--out", "x", "--no-ema-schedule", "--warmup-steps", "none",
        "--hidden-layer", "-2", "--max-grad-norm", "1.5", "--resume", "--log-with", "tensorboard", "--simsiam",
    ])
    assert args.num_train_steps == 7 and args.learning_rate == 1e-3 and args.output_dir == "x"
    assert args.ema_schedule is False and args.warmup_steps is None and args.hidden_layer == -2
    assert args.max_grad_norm == 1.5 and args.resume is True and args.log_with == "tensorboard" and args.simsiam
    args = build_parser().parse_args(["train", "--hidden-layer", "layer4", "--resume", "runs/a"])
    assert args.hidden_layer == "layer4" and args.resume == "runs/a"
    defaults = build_parser().parse_args(["train"])
    assert defaults.batch_size == 64 and defaults.projection_hidden_size == 1024 and defaults.use_momentum


def test_console_script_runs() -> None:
    script = Path(sys.executable).with_name("byol-pytorch")
    assert script.is_file(), f"{script} missing: install the package (pip install -e .) to get the console script"
    done = subprocess.run([str(script), "train", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--num-train-steps" in done.stdout and "--optimizer {adam,adamw,sgd,lars}" in done.stdout


def test_python_dash_m_help() -> None:
    done = subprocess.run([sys.executable, "-m", "byol_pytorch", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert all(command in done.stdout for command in ("train", "eval", "embed"))
    for command in ("train", "eval", "embed"):
        assert main([command, "--help"]) == 0


# -- models --------------------------------------------------------------------------------------------------------------

def test_hidden_layer_table() -> None:
    assert default_hidden_layer("resnet18", torchvision.models.resnet18()) == "avgpool"
    assert default_hidden_layer("efficientnet_b0", torchvision.models.efficientnet_b0()) == "avgpool"
    assert default_hidden_layer("mobilenet_v2", torchvision.models.mobilenet_v2()) == -2


def test_small_image_stem() -> None:
    net = apply_small_image_stem(torchvision.models.resnet18())
    assert net.conv1.stride == (1, 1) and net.conv1.kernel_size == (3, 3) and isinstance(net.maxpool, torch.nn.Identity)
    assert net(torch.rand(2, 3, 16, 16)).shape == (2, 1000)
    resnet, mobilenet = torchvision.models.resnet18(), torchvision.models.mobilenet_v2()
    assert resolve_small_stem(None, resnet, 32, "cuda") is True
    assert resolve_small_stem(None, resnet, 32, "cpu") is False
    assert resolve_small_stem(None, resnet, 64, "cuda") is False
    assert resolve_small_stem(None, mobilenet, 32, "cuda") is False
    assert resolve_small_stem(False, resnet, 32, "cuda") is False
    assert resolve_small_stem(True, resnet, 32, "cpu") is True


# --- which errors are bad input (exit 2) and which are bugs (a traceback) -------------------------


def test_a_network_too_small_for_the_images_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # AlexNet's stride-4 stem and two max-pools leave nothing of a 16-px image; at 224 px it runs.
    code = main(["train", *tiny(model="alexnet", hidden_layer="avgpool"), "--out", str(tmp_path / "run")])
    _assert_usage_error(code, capsys, "--image-size 16: alexnet: the network cannot run on 16x16 images, though "
                        "it runs on 224x224", "use larger images")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("error", [ValueError("an internal invariant broke"), RuntimeError("CUDA out of memory")])
def test_an_error_that_is_not_bad_input_keeps_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception
) -> None:
    from byol_pytorch.trainer import BYOLTrainer

    def broken(self: BYOLTrainer) -> None:
        raise error

    monkeypatch.setattr(BYOLTrainer, "__call__", broken)
    with pytest.raises(type(error), match=str(error)):
        main(["train", *TINY, "--out", str(tmp_path / "run")])
    assert "--image-size" not in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing was trained: no folder left to block a retry


def test_an_out_of_range_option_is_named_by_its_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", *TINY, "--warmup-steps", "9", "--out", str(tmp_path / "run")])
    _assert_usage_error(code, capsys, "--warmup-steps must be in [0, num_train_steps], got 9")


def test_crop_scale_reaches_the_paper_views_and_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from byol_pytorch.trainer import BYOLTrainer

    seen = {}

    def record(self: BYOLTrainer) -> None:
        seen["scale"] = self.learner.crop_spec.scale
        raise KeyboardInterrupt  # stop before training

    monkeypatch.setattr(BYOLTrainer, "__call__", record)
    code = main(["train", *TINY, "--augment", "paper", "--crop-scale", "0.5", "1", "--out", str(tmp_path / "a")])
    assert code == 130 and seen["scale"] == (0.5, 1.0)
    capsys.readouterr()
    code = main(["train", *TINY, "--augment", "paper", "--crop-scale", "0", "1.5", "--out", str(tmp_path / "b")])
    _assert_usage_error(code, capsys, "--crop-scale must satisfy 0 < low <= high <= 1, got (0.0, 1.5)")
    code = main(["train", *TINY, "--crop-scale", "0.5", "1", "--out", str(tmp_path / "c")])
    _assert_usage_error(code, capsys, "--crop-scale sets the crops of the 'paper' views; these are the 'digits'")
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


# -- output and checkpoint paths --------------------------------------------------------------------------------------


def test_embed_checks_out_before_computing(trained_run: tuple[Path, str], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import byol_pytorch.cli.embed as embed

    run, _ = trained_run
    _write_images(tmp_path / "images", {"": 2})
    computed: list[int] = []
    monkeypatch.setattr(embed, "features_of", lambda *a, **k: computed.append(1) or (torch.zeros(2, 4), None))
    base = ["embed", "--checkpoint", str(run), "--data", str(tmp_path / "images")]
    for folder in (tmp_path / "folder", tmp_path / "emb.npy.d.npy"):
        folder.mkdir()
        _assert_usage_error(main([*base, "--out", str(folder)]), capsys, f"--out {folder} is a folder; name a file in it")
    existing = tmp_path / "emb.npy"
    existing.write_bytes(b"someone else's embeddings")
    _assert_usage_error(main([*base, "--out", str(existing)]), capsys,
                        f"--out {existing} already exists; pass --overwrite to replace it")
    assert computed == [] and existing.read_bytes() == b"someone else's embeddings"
    assert main([*base, "--out", str(existing), "--overwrite"]) == 0
    assert computed == [1] and np.load(existing).shape == (2, 4)


@pytest.mark.parametrize("content", ["random", "metrics"])
def test_a_file_that_is_not_a_torch_file_is_named_as_such(trained_run: tuple[Path, str], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str], content: str) -> None:
    run, _ = trained_run
    copy = tmp_path / "run"
    copy.mkdir()
    (copy / "run.json").write_bytes((run / "run.json").read_bytes())
    (copy / "net.pt").write_bytes(os.urandom(4096) if content == "random" else (run / "metrics.jsonl").read_bytes())
    err = _assert_usage_error(main(["eval", "--checkpoint", str(copy), "--no-progress"]), capsys,
                              f"{copy / 'net.pt'} is not a file written by torch.save")
    assert "weights_only" not in err and "pickled code" not in err


def test_a_network_that_does_not_fit_names_keys_and_shapes(trained_run: tuple[Path, str], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = trained_run
    copy = tmp_path / "run"
    copy.mkdir()
    (copy / "run.json").write_bytes((run / "run.json").read_bytes())  # a resnet18 run
    other = torchvision.models.mobilenet_v3_small().state_dict()
    torch.save(other, copy / "net.pt")
    err = _assert_usage_error(main(["eval", "--checkpoint", str(copy), "--no-progress"]), capsys,
                              "the saved network does not fit the resnet18 of run.json: missing keys conv1.weight, "
                              "bn1.weight, bn1.bias and ", "; unexpected keys features.0.0.weight, ")
    # A network of the same keys with one layer of another width names that shape.
    same = torch.load(run / "net.pt", weights_only=True)
    same["fc.weight"] = same["fc.weight"][:3]
    torch.save(same, copy / "net.pt")
    _assert_usage_error(main(["eval", "--checkpoint", str(copy), "--no-progress"]), capsys,
                        "fc.weight is (3, 512) in the file and (10, 512) in the model")
