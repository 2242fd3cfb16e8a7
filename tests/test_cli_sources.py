"""What --data names (byol_pytorch/cli/sources.py and the CLI): tar shards, save_to_disk folders, Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from byol_pytorch.cli import main
from byol_pytorch.cli.sources import SourceError, indexed_images, source_kind

from .cli_helpers import Capture, assert_usage_error, reset_accelerate, tiny
from .photo_sources import hf_dataset, label, write_parquet, write_shards

COUNT = 12  # photos in every source
# Three steps of four images at 32 px: a few seconds on a CPU.
SHORT = tiny(steps="3", batch_size="4", image_size="32", knn_every="0", checkpoint_every="3")


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture(autouse=True)
def _datasets_cache_here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import datasets

    # datasets converts Parquet into its cache: here, not under the user's home.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The same 12 photos as shards (one broken), a save_to_disk folder and a Parquet file of pyarrow's."""
    root = tmp_path_factory.mktemp("sources")
    hf_dataset(COUNT).save_to_disk(str(root / "saved"))
    return {"shards": write_shards(root / "shards", 3, COUNT // 3, broken=(5,)),
            "saved": str(root / "saved"),
            "parquet": str(write_parquet(root / "table" / "photos.parquet", COUNT))}


@pytest.fixture(scope="module")
def trained_on_saved(sources: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train`` on the save_to_disk folder, scored on the Parquet file (its labels in the column 'kind').

    Training on Parquet reads the rows as training on the folder does (both are a ``datasets.Dataset``), so
    the command line reads Parquet here, for scoring, and not in a second training run.
    """
    run = tmp_path_factory.mktemp("runs") / "saved"
    reset_accelerate()
    threads = torch.get_num_threads()
    with Capture() as capture:
        code = main(["train", *SHORT, "--data", sources["saved"], "--eval-data", sources["parquet"],
                     "--label-column", "kind", "--out", str(run)])
    reset_accelerate()
    torch.set_num_threads(threads)
    assert code == 0, capture.err
    assert f"on {COUNT} images of {sources['saved']}" in capture.out
    return run


def test_the_kind_of_source_is_told_from_its_name(sources: dict[str, str], tmp_path: Path) -> None:
    assert [source_kind(sources[k]) for k in ("shards", "saved", "parquet")] == ["shards", "saved", "parquet"]
    assert source_kind(str(Path(sources["parquet"]).parent)) == "parquet"  # a folder of Parquet files
    (tmp_path / "photos").mkdir()
    assert source_kind(str(tmp_path / "photos")) == "folder"
    with pytest.raises(SourceError, match="no such folder; pass a folder of images .* tar shards"):
        source_kind(str(tmp_path / "missing"))


@pytest.mark.parametrize("kind", ["shards", "saved", "parquet"])
def test_every_source_gives_the_same_labelled_photos(sources: dict[str, str], kind: str) -> None:
    column = "kind" if kind == "parquet" else None
    images = indexed_images(sources[kind], 16, labelled=True, label_column=column)
    assert len(images) == COUNT and images.labels.tolist() == [label(i) for i in range(COUNT)]
    items = [images[i] for i in range(COUNT)]
    broken = {5} if kind == "shards" else set()
    assert [i for i, item in enumerate(items) if item is None] == sorted(broken)
    assert all(item[0].shape == (3, 16, 16) for item in items if item is not None)
    # The same photo, whatever holds it (the shards' sample 0 and the table's row 0).
    reference = indexed_images(sources["saved"], 16, labelled=False)[0]
    assert torch.equal(items[0][0], reference)


def test_train_on_a_save_to_disk_folder_scored_on_parquet(trained_on_saved: Path) -> None:
    summary = json.loads((trained_on_saved / "summary.json").read_text())
    assert summary["steps"] == 3 and np.isfinite(summary["final_loss"])
    assert "12 classes" not in summary["eval_data_description"]
    assert summary["eval_data_description"].endswith("6 bank / 6 query images, 3 classes")


def test_eval_reads_shard_labels_and_leaves_the_broken_photo_out(
        trained_on_saved: Path, sources: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--checkpoint", str(trained_on_saved), "--data", sources["shards"], "--no-progress",
                 "--threads", "1", "--k", "3"])
    out = capsys.readouterr().out
    assert code == 0, out
    # Four photos per class, halved per class; sample 5 (class 2) could not be decoded.
    assert "3 classes (1 unreadable image left out)" in out and "11" not in out.split("classes")[0][-12:]


def test_embed_names_the_shard_samples(trained_on_saved: Path, sources: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "emb.pt"
    assert main(["embed", "--checkpoint", str(trained_on_saved), "--data", sources["shards"], "--out", str(out),
                 "--no-progress", "--threads", "1"]) == 0
    saved = torch.load(out, weights_only=True)
    folder = Path(sources["shards"]).parent
    expected = [f"{folder / f'train-{i // 4:06d}.tar'}:{i:06d}" for i in range(COUNT) if i != 5]
    assert saved["files"] == expected and saved["embeddings"].shape[0] == COUNT - 1


def test_sources_without_images_or_labels_are_refused(sources: dict[str, str], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "run")]
    table = write_parquet(tmp_path / "t.parquet", 4)
    hf_dataset(4).remove_columns("image").save_to_disk(str(tmp_path / "no-images"))
    capsys.readouterr()  # datasets' progress bars
    assert_usage_error(main(["train", *SHORT, "--data", str(tmp_path / "no-images"), *out]), capsys,
                        f"--data {tmp_path / 'no-images'}: dataset item is a dict with keys ['label']", "--image-key")
    assert_usage_error(main(["train", *SHORT, "--data", str(table), "--eval-data", str(table), *out]), capsys,
                        f"--eval-data {table} has no label column 'label'; its columns are ['picture', 'kind']",
                        "--label-column")
    assert not (tmp_path / "run").exists()


def test_missing_or_imageless_shards_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "run")]
    pattern = write_shards(tmp_path / "shards", 2, 2)
    missing = pattern.replace("000001}", "000003}")
    assert_usage_error(main(["train", *SHORT, "--data", missing, *out]), capsys,
                        "2 of the 4 shards do not exist, the first", "train-000002.tar")
    texts = write_shards(tmp_path / "texts", 1, 2, extension="txt")
    assert_usage_error(main(["train", *SHORT, "--data", texts, *out]), capsys,
                        "no sample of the shards holds an image (.jpg, .jpeg, .png or .webp)")
    assert not (tmp_path / "run").exists()


def test_train_on_shards(sources: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         caplog: pytest.LogCaptureFixture) -> None:
    run = tmp_path / "run"
    assert main(["train", *SHORT, "--data", sources["shards"], "--shuffle-buffer", "4", "--out", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 3 and np.isfinite(summary["final_loss"])
    assert f"on a stream of images of {sources['shards']}" in capsys.readouterr().out
    # 3 steps of 4 read the 11 good photos of the first pass: the broken sample 5 was met, named and skipped.
    assert {r.getMessage().split(" (")[0] for r in caplog.records if "unreadable" in r.getMessage()} == {
        f"skipped unreadable image {Path(sources['shards']).parent / 'train-000001.tar'}:000005"}
