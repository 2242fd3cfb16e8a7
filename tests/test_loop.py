"""The training loop (byol_pytorch/training/loop.py): steps, checkpoints, resume, the events callbacks get."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from torch import nn

from byol_pytorch import BYOLTrainer, MockDataset, NonFiniteLossError, TrainerCallback, TrainerConfig
from byol_pytorch.checkpoint import atomic_save, list_checkpoints, safe_load
from byol_pytorch.distributed import convert_sync_batchnorm
from byol_pytorch.training.callbacks import SaveCheckpoints, StopOnSignal

from . import forked
from .conftest import BreaksAfter, assert_same_state, free_port, state_copy, tiny_cnn

SCRIPTS = Path(__file__).parent / "scripts"
pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")
FAST = {"hidden_layer": "flatten", "projection_size": 8, "projection_hidden_size": 16, "num_workers": 0,
        "mixed_precision": "no", "progress": False, "log_every": 1, "batch_size": 4}


def _trainer(tmp_path: Path, steps: int = 4, dataset=None, net=None, **kwargs) -> BYOLTrainer:
    options = {**FAST, "num_train_steps": steps, "checkpoint_every": 2, "output_dir": str(tmp_path / "run"), **kwargs}
    torch.manual_seed(0)  # the same initial network in every run
    return BYOLTrainer(net or tiny_cnn(), dataset=dataset or MockDataset(16, 32), image_size=16, **options)


def test_training_writes_checkpoints_metrics_and_a_loadable_net(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, steps=6, keep_checkpoints=2)
    net = trainer()
    run = tmp_path / "run"
    assert [p.name for p in list_checkpoints(run)] == ["checkpoint-00000004.pt", "checkpoint-00000006.pt"]
    fresh = tiny_cnn()
    fresh.load_state_dict(torch.load(run / "net.pt", weights_only=True))
    assert_same_state(state_copy(fresh), state_copy(net))
    losses = [r["loss"] for r in trainer.history if "loss" in r]
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 6 and '"representation_std"' in lines[0]
    # metrics.jsonl records each step's loss as the run saw it; the steps trained the network.
    assert [json.loads(line)["loss"] for line in lines] == losses and len(set(losses)) == 6
    torch.manual_seed(0)
    initial = tiny_cnn()
    assert any(not torch.equal(a, b) for a, b in zip(state_copy(initial).values(), state_copy(net).values()))
    state = safe_load(run / "checkpoint-00000006.pt")
    assert state["step"] == 6 and {"learner", "optimizer", "rng", "config"} <= state.keys()


def test_no_checkpoint_at_step_zero_and_last_step_is_saved(tmp_path: Path) -> None:
    _trainer(tmp_path, steps=3, checkpoint_every=5)()
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["checkpoint-00000003.pt"]


def test_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    full = _trainer(tmp_path / "a", steps=6)
    full()
    first = _trainer(tmp_path / "b", steps=6, dataset=BreaksAfter(16))
    with pytest.raises(KeyboardInterrupt):
        first()  # dies fetching step 5's batch, after the step-4 checkpoint
    resumed = _trainer(tmp_path / "b", steps=6, resume=True)
    resumed()
    a = resumed.learner
    b = full.learner
    assert_same_state(state_copy(a), state_copy(b))


def test_killed_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    script = SCRIPTS / "resume_run.py"
    full = forked.start(script, [str(tmp_path / "full"), "8"])  # beside the killed run: one thread each
    proc = forked.start(script, [str(tmp_path / "killed"), "8", "slow"])
    deadline = time.time() + 240
    while not (tmp_path / "killed" / "checkpoint-00000004.pt").exists():
        assert time.time() < deadline and proc.poll() is None, "the run ended before its step-4 checkpoint"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait().returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "checkpoint-00000008.pt").exists()
    for run in (full, forked.start(script, [str(tmp_path / "killed"), "8", "resume"])):
        result = run.wait()
        assert result.returncode == 0, result.stderr
    a = torch.load(tmp_path / "full" / "final.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "final.pt", weights_only=True)
    assert_same_state(a, b)


def test_existing_run_folder_needs_resume(tmp_path: Path) -> None:
    _trainer(tmp_path, steps=2)()
    with pytest.raises(FileExistsError, match="already holds checkpoints; pass resume=True"):
        _trainer(tmp_path, steps=2)


def test_crash_during_save_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "checkpoint-00000002.pt"
    atomic_save({"step": 2}, path)

    def broken_save(obj, handle) -> None:
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"step": 4}, path)
    assert safe_load(path) == {"step": 2}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_checkpoint_with_pickled_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint-00000001.pt"
    torch.save({"step": 1, "payload": Payload()}, path)
    with pytest.raises(ValueError, match="refusing to load .*would run code stored in the file"):
        safe_load(path)


def test_corrupt_checkpoint_names_the_previous_one(tmp_path: Path) -> None:
    atomic_save({"step": 2}, tmp_path / "checkpoint-00000002.pt")
    (tmp_path / "checkpoint-00000004.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match=r"checkpoint-00000004.pt is corrupt.*previous checkpoint .*00000002.pt"):
        safe_load(tmp_path / "checkpoint-00000004.pt")
    trainer = _trainer(tmp_path / "x", steps=2, resume=str(tmp_path / "checkpoint-00000004.pt"))
    with pytest.raises(ValueError, match="corrupt or truncated"):
        trainer()


def test_gradient_accumulation_steps_ema_once_per_optimiser_step(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, steps=3, gradient_accumulation_steps=2)
    trainer()
    learner = trainer.learner
    assert trainer.step == 3 and learner.ema_step == 3


def test_bf16_on_cpu_runs_the_network_under_bf16_autocast(tmp_path: Path) -> None:
    net = tiny_cnn()
    trainer = _trainer(tmp_path, steps=2, net=net, mixed_precision="bf16")
    seen: list[tuple[torch.dtype, torch.dtype]] = []  # (weight, conv output) inside the training forward
    net.conv.register_forward_hook(lambda module, _args, out: seen.append((module.weight.dtype, out.dtype)))
    trainer()
    assert trainer.accelerator.mixed_precision == "bf16"
    # Autocast: float32 weights, the convolution computed in bfloat16.
    assert seen and set(seen) == {(torch.float32, torch.bfloat16)}
    state = safe_load(tmp_path / "run" / "checkpoint-00000002.pt")["learner"]
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all()
               for v in state.values() if v.is_floating_point())


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, steps=6, dataset=BreaksAfter(8, nan=True, length=64))
    with pytest.raises(NonFiniteLossError, match="NaN or infinite by step 3"):
        trainer()
    checkpoints = list_checkpoints(tmp_path / "run")
    assert [p.name for p in checkpoints] == ["checkpoint-00000002.pt"]
    state = safe_load(checkpoints[0])
    assert all(torch.isfinite(v).all() for v in state["learner"].values() if isinstance(v, torch.Tensor))


def test_options_are_validated(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown option 'learning_rat'; did you mean 'learning_rate'"):
        _trainer(tmp_path, learning_rat=1e-3)
    with pytest.raises(ValueError, match="optimizer must be one of adam, adamw, sgd, lars; got 'rmsprop'"):
        _trainer(tmp_path, optimizer="rmsprop")
    with pytest.raises(ValueError, match="fewer than one batch"):
        _trainer(tmp_path, dataset=MockDataset(16, 2))()


def test_lars_rate_is_scaled_by_the_batch(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, steps=2, optimizer="lars", lr_schedule="constant")
    trainer()
    assert trainer.history[-1]["lr"] == pytest.approx(0.2 * 4 / 256)
    groups = safe_load(tmp_path / "run" / "checkpoint-00000002.pt")["optimizer"]["param_groups"]
    # Biases and normalisation parameters in a group of their own, without the trust ratio.
    assert sorted(g["lars_exclude"] for g in groups) == [False, True]


def test_sgd_is_built_with_the_configured_rate_and_momentum(tmp_path: Path) -> None:
    net = tiny_cnn()
    before = state_copy(net)
    trainer = _trainer(tmp_path, steps=2, net=net, optimizer="sgd", learning_rate=0.05, optimizer_kwargs={"momentum": 0.9},
                       lr_schedule="constant")
    trainer()
    saved = safe_load(tmp_path / "run" / "checkpoint-00000002.pt")["optimizer"]
    (group,) = saved["param_groups"]
    assert group["lr"] == pytest.approx(0.05) and group["momentum"] == 0.9 and group["nesterov"] is False
    assert [r["lr"] for r in trainer.history if "lr" in r] == pytest.approx([0.05, 0.05])
    # SGD's own state: a momentum buffer for every parameter the loss trains (the classifier, which gets
    # no gradient, is not in the optimiser), and no Adam moments.
    learner = trainer.learner
    trainable = learner.trained_parameters()
    assert {id(p) for p in trainable} | {id(net.fc.weight), id(net.fc.bias)} == {
        id(p) for p in learner.parameters() if p.requires_grad}
    assert len(saved["state"]) == len(trainable)
    assert all(set(s) == {"momentum_buffer"} for s in saved["state"].values())
    after = state_copy(net)
    assert not torch.equal(after["conv.weight"], before["conv.weight"])
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())


def test_user_network_comes_back_as_it_was_built(tmp_path: Path) -> None:
    net = tiny_cnn()
    _trainer(tmp_path, steps=2, net=net, channels_last=True)()
    assert net.conv.weight.is_contiguous()
    assert not any(m._forward_hooks for m in net.modules())


def test_sync_batchnorm_swap_is_undone() -> None:
    net = tiny_cnn()
    original = net.bn
    restore = convert_sync_batchnorm(net)
    assert isinstance(net.bn, nn.SyncBatchNorm) and net.bn.weight is original.weight
    restore()
    assert net.bn is original


class Labelled(MockDataset):
    """Noise images in two classes, class 1 brighter than class 0: any encoder tells them apart."""

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = index % 2
        return 0.5 * super().__getitem__(index) + 0.5 * label, label


def test_knn_monitor_logs_the_current_networks_accuracy(tmp_path: Path) -> None:
    from byol_pytorch import FrozenEncoder
    from byol_pytorch.evaluate import extract_features, half_split_knn_accuracy

    eval_dataset = Labelled(16, 40)
    trainer = _trainer(tmp_path, steps=4, eval_dataset=eval_dataset, knn_every=2, knn_k=5)
    trainer()
    logged = {r["step"]: r["knn_top1"] for r in trainer.history if "knn_top1" in r}
    assert sorted(logged) == [2, 4]
    # Recomputed here from the saved learner of each step, with the configured k.
    for step, accuracy in logged.items():
        learner = trainer.learner
        learner.load_state_dict(safe_load(tmp_path / "run" / f"checkpoint-{step:08d}.pt")["learner"])
        features, labels = extract_features(FrozenEncoder(learner), eval_dataset)
        assert accuracy == half_split_knn_accuracy(features, labels, k=5), step
    # The two classes differ in brightness, which the features keep: a monitor that mixed up
    # bank and queries, labels or images would be near chance (0.5).
    assert all(accuracy >= 0.9 for accuracy in logged.values()), logged


def test_custom_views_can_ask_for_normalisation(tmp_path: Path) -> None:
    def crop(x: torch.Tensor) -> torch.Tensor:
        return x[..., :16, :16]

    plain = _trainer(tmp_path / "plain", augment_fn=crop)
    normalised = _trainer(tmp_path / "normalised", augment_fn=crop, normalize=True)
    assert plain.learner.normalize is None and normalised.learner.normalize is not None
    images = torch.rand(4, 3, 16, 16)
    plain_views, normalised_views = plain.learner._prepare(images), normalised.learner._prepare(images)
    assert torch.equal(plain_views, images)
    assert torch.allclose(normalised_views, normalised.learner.normalize(images))
    assert not torch.allclose(normalised_views, images)


class Blank(MockDataset):
    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.zeros(3, 16, 16)


def test_collapse_monitor_warns_when_representations_are_identical(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, steps=2, dataset=Blank(16, 16))
    with pytest.warns(UserWarning, match="representation collapse suspected at step 1"):
        trainer()
    assert trainer.history[0]["representation_std"] < 1e-3


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_files_in_a_folder_are_skipped_and_counted(tmp_path: Path, workers: int,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    from byol_pytorch import ImageFolderDataset

    folder = tmp_path / "images" / "nested"
    folder.mkdir(parents=True)
    for i in range(9):
        Image.new("RGB", (20, 20), (i * 20, 100, 50)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not an image at all")
    dataset = ImageFolderDataset(tmp_path / "images", 16)
    trainer = _trainer(tmp_path, steps=3, dataset=dataset, batch_size=10, num_workers=workers)
    trainer()
    # Met in a worker process or in this one, the file is counted here, once, and the total printed.
    assert trainer.step == 3 and dataset.skipped_files == {str(folder / "broken.png")}
    assert "1 of the 10 image files could not be read and were skipped" in capsys.readouterr().out


def test_cpu_threads_are_set_only_when_asked() -> None:
    from byol_pytorch.devices import set_cpu_threads

    before = torch.get_num_threads()
    try:
        assert set_cpu_threads(None) == before
        assert set_cpu_threads(1) == 1 == torch.get_num_threads()
        with pytest.raises(ValueError, match="threads must be a positive integer, got 0"):
            set_cpu_threads(0)
    finally:
        torch.set_num_threads(before)


class RecordingSGD(torch.optim.SGD):
    """SGD that records the learning rate each step actually runs at."""

    rates: ClassVar[list[float]] = []

    def step(self, closure=None):
        RecordingSGD.rates.append(self.param_groups[0]["lr"])
        return super().step(closure)


def test_every_step_runs_at_its_scheduled_rate_and_logs_it(tmp_path: Path) -> None:
    from byol_pytorch.optim import warmup_cosine

    RecordingSGD.rates = []
    trainer = _trainer(tmp_path, steps=8, optimizer_klass=RecordingSGD, learning_rate=0.1, warmup_steps=4)
    trainer()
    expected = [0.1 * warmup_cosine(k, 8, 4) for k in range(8)]
    assert RecordingSGD.rates == pytest.approx(expected)
    assert RecordingSGD.rates[0] == pytest.approx(0.025)  # step 1 warms up, not at the peak
    assert [r["lr"] for r in trainer.history if "lr" in r] == pytest.approx(expected)


def test_resumed_schedule_continues_where_it_stopped(tmp_path: Path) -> None:
    RecordingSGD.rates = []
    first = _trainer(tmp_path, steps=8, optimizer_klass=RecordingSGD, learning_rate=0.1, warmup_steps=4,
                     dataset=BreaksAfter(16))
    with pytest.raises(KeyboardInterrupt):
        first()
    RecordingSGD.rates = []
    _trainer(tmp_path, steps=8, optimizer_klass=RecordingSGD, learning_rate=0.1, warmup_steps=4, resume=True)()
    from byol_pytorch.optim import warmup_cosine

    start = 8 - len(RecordingSGD.rates)
    assert start in (2, 4)  # the newest checkpoint before the crash
    assert RecordingSGD.rates == pytest.approx([0.1 * warmup_cosine(k, 8, 4) for k in range(start, 8)])


def test_logged_tau_is_the_decay_the_step_used(tmp_path: Path) -> None:
    from byol_pytorch import cosine_tau

    trainer = _trainer(tmp_path, steps=4)
    trainer()
    assert [r["tau"] for r in trainer.history if "tau" in r] == pytest.approx(
        [cosine_tau(k, 4, 0.99) for k in range(4)])


def test_non_finite_loss_is_caught_at_the_logging_step_not_the_checkpoint(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, steps=40, dataset=BreaksAfter(8, nan=True, length=64), checkpoint_every=1000,
                       log_every=1)
    with pytest.raises(NonFiniteLossError, match="NaN or infinite by step 3"):
        trainer()
    assert trainer.step == 3


def _photo_folder(folder: Path, count: int = 12) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (30, 40 + i, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    return folder


def test_folders_train_on_loader_crops_sent_as_uint8(tmp_path: Path) -> None:
    from byol_pytorch import ImageFolderDataset
    from byol_pytorch.data import CroppedViews

    dataset = ImageFolderDataset(_photo_folder(tmp_path / "photos"), 16)
    trainer = _trainer(tmp_path, steps=2, dataset=dataset)
    seen = []
    trainer.learner.register_forward_pre_hook(lambda _m, args, kwargs: seen.append(kwargs.get("views")),
                                              with_kwargs=True)
    trainer()
    assert seen and all(isinstance(v, CroppedViews) for v in seen)
    assert {v.view_1.dtype for v in seen} == {v.view_2.dtype for v in seen} == {torch.uint8}
    assert seen[0].view_1.shape == (4, 3, 16, 16)
    assert dataset.views is None  # the user's dataset is left as it was
    # Every batch was waited for (the folder's photos are read and decoded) and each wait is in one line.
    records = [r for r in trainer.history if "loss" in r]
    assert all(r["data_wait_s"] > 0 and 0 < r["data_wait_fraction"] <= 1 for r in records)
    assert sum(r["data_wait_s"] for r in records) == pytest.approx(trainer.data_wait_s)


@pytest.mark.parametrize("workers", [0, 2])
def test_folder_runs_resume_to_the_same_network(tmp_path: Path, workers: int) -> None:
    from byol_pytorch import ImageFolderDataset

    class CrashingFolder(ImageFolderDataset):
        served = 0

        def __getitem__(self, index: int):  # type: ignore[override]
            self.served += 1
            if self.served > 16:  # step 5's first image, after the step-4 checkpoint
                raise KeyboardInterrupt
            return super().__getitem__(index)

    folder = _photo_folder(tmp_path / "photos")  # 12 images: 3 batches an epoch, so the crash is in epoch 2
    whole = _trainer(tmp_path / "whole", steps=6, dataset=ImageFolderDataset(folder, 16), num_workers=workers)()
    with pytest.raises(KeyboardInterrupt):  # in this process: the crash needs no workers
        _trainer(tmp_path / "parts", steps=6, dataset=CrashingFolder(folder, 16))()
    resumed = _trainer(tmp_path / "parts", steps=6, dataset=ImageFolderDataset(folder, 16), resume=True,
                       num_workers=workers)()
    assert_same_state(state_copy(whole), state_copy(resumed))


def test_default_workers_leave_cores_for_compute() -> None:
    from byol_pytorch.devices import default_num_workers

    assert default_num_workers("cpu", cores=2) == 0
    assert default_num_workers("cpu", cores=16) == 4
    assert default_num_workers("cuda", cores=16) == 15
    assert default_num_workers("cuda", processes_per_machine=8, cores=64) == 7
    assert default_num_workers("cuda", cores=1) == 1
    assert default_num_workers("cuda", cores=64) == 16


def test_a_checkpoint_and_the_knn_monitor_work_before_training(tmp_path: Path) -> None:
    from byol_pytorch.data import DigitsDataset

    digits = DigitsDataset(16, split="test", return_labels=True)
    trainer = _trainer(tmp_path, eval_dataset=digits)
    before = trainer.knn_accuracy()
    path = trainer.save_checkpoint()
    assert path is not None and path.name == "checkpoint-00000000.pt"
    saved = torch.load(path, weights_only=True)
    assert saved["step"] == 0 and saved["scheduler"]["last_epoch"] == 0
    assert_same_state(saved["learner"], trainer.learner.state_dict())
    # The monitor is the same function of the weights before and after a save.
    assert trainer.knn_accuracy() == before and 0.1 < before < 1.0


def test_images_per_logged_line_count_every_accumulated_batch(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, steps=3, gradient_accumulation_steps=2)
    trainer()
    lines = [r for r in trainer.history if "loss" in r]
    assert [r["step"] for r in lines] == [1, 2, 3]
    assert [r["images"] for r in lines] == [8, 8, 8]  # 2 batches of 4 per optimiser step
    assert trainer.global_batch_size == 8


def test_checkpoint_every_a_duration_saves_by_training_time(tmp_path: Path) -> None:
    # An hour is not reached in 4 steps: only the last step is saved; a second is reached at every logging step.
    _trainer(tmp_path / "hour", steps=4, checkpoint_every="1h", log_every=1)()
    assert [p.name for p in list_checkpoints(tmp_path / "hour" / "run")] == ["checkpoint-00000004.pt"]
    trainer = _trainer(tmp_path / "tick", steps=4, checkpoint_every="1s", log_every=2, keep_checkpoints=5)
    trainer.checkpoint_schedule.clock = iter(range(0, 1000, 2)).__next__  # 2 s between readings
    trainer()
    assert [p.name for p in list_checkpoints(tmp_path / "tick" / "run")] == [
        "checkpoint-00000002.pt", "checkpoint-00000004.pt"]


# --- the events a callback gets, and the config as the one door -----------------------------------------

SHORT = {**FAST, "num_train_steps": 3}
CALLBACK_SCRIPT = SCRIPTS / "callback_steps.py"
_spec = importlib.util.spec_from_file_location("callback_steps", CALLBACK_SCRIPT)
callback_steps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(callback_steps)


def _expected_events(steps: int, checkpoint_every: int, batches_per_step: int) -> list[list]:
    """What the recorder of ``scripts/callback_steps.py`` should see: each event with the right step."""
    events: list[list] = [["train_begin", 0]]
    for step in range(1, steps + 1):
        events += [["batch_end", step - 1]] * batches_per_step
        events += [["save", step]] if step % checkpoint_every == 0 or step == steps else []
        events += [["step_end", step], ["log", step]]
    return [*events, ["train_end", steps]]


def _check_recorded(out: Path, rank: int, processes: int) -> None:
    seen = json.loads((out / f"events{rank}.json").read_text())
    assert seen["processes"] == processes
    assert seen["events"] == _expected_events(callback_steps.STEPS, 2, batches_per_step=2)
    assert seen["history"] == list(range(1, callback_steps.STEPS + 1))


def test_a_user_callback_sees_every_event_with_its_step(tmp_path: Path) -> None:
    callback_steps.main(tmp_path)
    _check_recorded(tmp_path, 0, 1)
    own = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["own"] for r in own if "own" in r] == [10 * s for s in range(1, callback_steps.STEPS + 1)]


def test_a_user_callback_sees_every_step_on_two_processes(tmp_path: Path) -> None:
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port())]
    result = subprocess.run([*launch, str(CALLBACK_SCRIPT), str(tmp_path)], env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    for rank in (0, 1):
        _check_recorded(tmp_path, rank, 2)


def test_a_config_is_the_one_door_and_keywords_go_on_top(tmp_path: Path) -> None:
    config = TrainerConfig(**SHORT, output_dir=str(tmp_path / "a"), crop_scale=(0.5, 1.0))
    torch.manual_seed(0)
    trainer = BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, config=config)
    assert trainer.config is config and trainer.learner.crop_spec.scale == (0.5, 1.0)
    torch.manual_seed(0)
    keywords = BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, **{**SHORT, "output_dir": str(tmp_path / "b"),
                                                                    "crop_scale": (0.5, 1.0)})
    assert keywords.config == TrainerConfig(**{**SHORT, "output_dir": str(tmp_path / "b"), "crop_scale": (0.5, 1.0)})
    on_top = BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, config=config, batch_size=2)
    assert on_top.config.batch_size == 2 and config.batch_size == 4  # the caller's config is left as it was
    # The same options give the same run, whichever door they came through.
    assert all(torch.equal(a, b) for a, b in zip(state_copy(trainer()).values(), state_copy(keywords()).values()))
    with pytest.raises(TypeError, match="config must be a TrainerConfig, got dict"):
        BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, config=dict(SHORT))


def test_callbacks_run_after_the_trainers_own_and_must_be_callbacks(tmp_path: Path) -> None:
    mine = TrainerCallback()
    trainer = BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, callbacks=[mine], output_dir=str(tmp_path), **SHORT)
    order = list(trainer.callbacks)
    assert isinstance(order[0], StopOnSignal) and isinstance(order[-2], SaveCheckpoints) and order[-1] is mine
    with pytest.raises(TypeError, match="callbacks must be TrainerCallback instances, got function"):
        BYOLTrainer(tiny_cnn(), MockDataset(16, 16), 16, callbacks=[lambda *a: None], output_dir=str(tmp_path), **SHORT)
