"""Fault injection: kills while saving, a truncated checkpoint, a full disk, NaN weights, a dead process.

Each test runs the real command line (``tests/scripts/faulty_cli.py`` injects the
fault) under the defaults but for the network: MobileNetV3-small on the digits at
16 px (its checkpoints are a fifth of ResNet-18's, which the other tests cover),
bf16 autocast where the CPU has it, channels-last. A single-process run is a
process forked from one that imported the package (``tests/forked.py``), so a
kill ends it alone. A resumed run must end with
exactly the weights of a run that was never interrupted.

The single-process runs take one thread each, and the independent ones (the
uninterrupted reference and every stopped run, then every resume) run two at a
time: a one-thread run leaves the second core idle.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from byol_pytorch import BYOLTrainer, MockDataset, NonFiniteStateError
from byol_pytorch.checkpoint import list_checkpoints, remove_stale_temporaries, safe_load
from byol_pytorch.metrics import load_metrics

from . import forked
from .conftest import free_port, tiny_cnn

SCRIPT = Path(__file__).parent / "scripts" / "faulty_cli.py"
# Three steps, a checkpoint (and net.pt) after each; keep_checkpoints stays at its default of 2.
TRAIN = ["train", "--steps", "3", "--checkpoint-every", "1", "--batch-size", "16", "--no-final-eval",
         "--seed", "0", "--no-progress", "--model", "mobilenet_v3_small", "--log-every", "1"]
LAST = "checkpoint-00000003.pt"


def run_cli(out: Path, *extra: str, fault: str = "none", timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "BYOL_FAULT": fault, "OMP_NUM_THREADS": "1"}
    return forked.run(SCRIPT, [*TRAIN, "--out", str(out), *extra], env=env, timeout=timeout)


def final_state(run: Path) -> dict[str, torch.Tensor]:
    newest = list_checkpoints(run)[-1]
    assert newest.name == LAST
    return {**{f"net.{k}": v for k, v in torch.load(run / "net.pt", weights_only=True).items()},
            **{f"learner.{k}": v for k, v in safe_load(newest)["learner"].items() if isinstance(v, torch.Tensor)}}


def assert_equal_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]
    assert all(torch.isfinite(v).all() for v in a.values() if v.is_floating_point())


def logged_steps(run: Path) -> list[int]:
    return [r["step"] for r in load_metrics(run) if "loss" in r]


def temporaries(run: Path) -> list[str]:
    return [p.name for p in run.iterdir() if ".tmp-" in p.name]


def truncate_checkpoint_2(run: Path) -> None:
    newest = run / "checkpoint-00000002.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])


@dataclass
class Interrupted:
    """A run stopped by a fault, what it left, and its resume."""

    run: Path
    stopped: subprocess.CompletedProcess
    left: list[str]  # the temporary files right after the stop
    checkpoints: list[str]  # and the checkpoints
    resumed: subprocess.CompletedProcess


KILL_WHILE_SAVING = [
    "kill-writing:checkpoint-00000002.pt:1:end",  # checkpoint 2 all written, not yet renamed
    "kill-writing:net.pt:2:1000000",  # checkpoint 2 in place, net.pt a megabyte in
]
# A copy of the net.pt run as the kill left it (checkpoints 1 and 2 intact), with checkpoint 2 then truncated.
TRUNCATED = "truncated-copy"
DISK_FULL = "none"  # no fault injected: the run's folder is on a disk too small for two checkpoints


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory: pytest.TempPathFactory):
    """A 60 MB tmpfs, or the reason there is none."""
    mount = tmp_path_factory.mktemp("disk")
    # One checkpoint (~35 MB), net.pt and net.safetensors (~6 MB each) fit; a second checkpoint does not.
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=60m", "tmpfs", str(mount)], capture_output=True,
                          check=False)
    if made.returncode != 0:
        yield f"cannot mount a tmpfs here ({made.stderr.decode().strip()})"
        return
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory,
         small_disk: Path | str) -> tuple[dict[str, torch.Tensor], dict[str, Interrupted]]:
    """The uninterrupted reference's final state, and each fault's stopped and resumed run."""
    root = tmp_path_factory.mktemp("faults")
    folders = {fault: root / f"run{i}" for i, fault in enumerate(KILL_WHILE_SAVING)}
    between: dict[str, Callable[[], object]] = {}
    if isinstance(small_disk, Path):
        folders[DISK_FULL] = small_disk / "run"
        between[DISK_FULL] = lambda: subprocess.run(["mount", "-o", "remount,size=1g", str(small_disk)], check=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        reference = pool.submit(run_cli, root / "uninterrupted")
        stopping = {fault: pool.submit(run_cli, run, fault=fault) for fault, run in folders.items()}
        stopped = {fault: future.result() for fault, future in stopping.items()}
        shutil.copytree(folders[KILL_WHILE_SAVING[1]], root / "truncated")
        folders[TRUNCATED], stopped[TRUNCATED] = root / "truncated", stopped[KILL_WHILE_SAVING[1]]
        between[TRUNCATED] = lambda: truncate_checkpoint_2(folders[TRUNCATED])
        left = {fault: (temporaries(run), [p.name for p in list_checkpoints(run)]) for fault, run in folders.items()}
        for change in between.values():
            change()
        resuming = {fault: pool.submit(run_cli, run, "--resume") for fault, run in folders.items()}
        interrupted = {fault: Interrupted(run, stopped[fault], *left[fault], resuming[fault].result())
                       for fault, run in folders.items()}
        done = reference.result()
    assert done.returncode == 0, done.stderr
    return final_state(root / "uninterrupted"), interrupted


@pytest.fixture
def uninterrupted(runs) -> dict[str, torch.Tensor]:
    return runs[0]


@pytest.mark.parametrize("fault", KILL_WHILE_SAVING)
def test_kill_while_saving_then_resume_equals_an_uninterrupted_run(fault: str, runs, uninterrupted: dict) -> None:
    case = runs[1][fault]
    assert case.stopped.returncode == -9, case.stopped.stderr
    assert case.left, "the kill should have left a temporary file behind"
    assert case.resumed.returncode == 0, case.resumed.stderr
    assert "left by a process killed while saving" in case.resumed.stdout
    assert temporaries(case.run) == []
    assert_equal_states(final_state(case.run), uninterrupted)
    assert logged_steps(case.run) == [1, 2, 3]  # each step once, whatever the killed run had written


def test_truncated_newest_checkpoint_resumes_from_the_one_before(runs, uninterrupted: dict) -> None:
    case = runs[1][TRUNCATED]
    assert case.stopped.returncode == -9
    resumed = case.resumed
    assert resumed.returncode == 0, resumed.stderr
    assert "skipping" in resumed.stderr and "checkpoint-00000002.pt is corrupt or truncated" in resumed.stderr
    assert "resumed from" in resumed.stdout and "checkpoint-00000001.pt at step 1" in resumed.stdout
    assert_equal_states(final_state(case.run), uninterrupted)
    # The killed run had logged step 2; resumed from step 1, that record was set aside.
    assert logged_steps(case.run) == [1, 2, 3] and "set aside 1 record(s)" in resumed.stdout


def test_disk_full_stops_with_one_line_naming_the_intact_checkpoint(small_disk: Path | str, runs,
                                                                    uninterrupted: dict) -> None:
    if isinstance(small_disk, str):
        pytest.skip(small_disk)
    case = runs[1][DISK_FULL]
    full, run = case.stopped, case.run
    assert full.returncode == 1
    lines = full.stderr.strip().splitlines()
    assert "Traceback" not in full.stderr
    assert lines[-1] == (
        f"byol-pytorch: error: the disk is full: no space left on the device to write "
        f"{run / 'checkpoint-00000002.pt'} at step 2; the last intact checkpoint is "
        f"{run / 'checkpoint-00000001.pt'}; free some space and resume from it"
    )
    assert case.checkpoints == ["checkpoint-00000001.pt"] and case.left == []
    assert case.resumed.returncode == 0, case.resumed.stderr  # after the disk grew to 1 GB
    assert_equal_states(final_state(run), uninterrupted)


def test_one_of_two_processes_killed_ends_the_launch_and_resume_completes(tmp_path: Path) -> None:
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port()), str(SCRIPT), *TRAIN, "--batch-size", "8"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}  # a core per process

    def run(out: Path, *extra: str, fault: str = "none") -> subprocess.CompletedProcess:
        return subprocess.run([*launch, "--out", str(out), *extra], env={**env, "BYOL_FAULT": fault},
                              capture_output=True, text=True, timeout=240, check=False)

    killed = run(tmp_path / "run", fault="kill-rank:1:2")  # a hang would raise TimeoutExpired
    assert killed.returncode != 0
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["checkpoint-00000001.pt"]
    resumed = run(tmp_path / "run", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 1 (the main process's choice, sent to all 2)" in resumed.stdout + resumed.stderr
    # That a resumed two-process run equals an uninterrupted one is test_multinode's; here: it completes, finite.
    state = final_state(tmp_path / "run")
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


class InjectNaN(MockDataset):
    """Puts a NaN into the network's batch-norm running mean once ``after`` items were read.

    The running mean is not used by a training-mode forward, so the loss stays finite:
    only the check of the saved state can see it.
    """

    def __init__(self, net: torch.nn.Module, after: int) -> None:
        super().__init__(16, 64)
        self.net, self.after, self.read = net, after, 0

    def __getitem__(self, index: int) -> torch.Tensor:
        self.read += 1
        if self.read == self.after:
            self.net.bn.running_mean[0] = float("nan")
        return super().__getitem__(index)


# In this process: a file run before this one on the same xdist worker may have left an Accelerator state.
@pytest.mark.usefixtures("fresh_accelerate_state")
def test_non_finite_weight_mid_run_stops_before_saving(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = tiny_cnn()
    trainer = BYOLTrainer(net, dataset=InjectNaN(net, after=14), image_size=16, hidden_layer="flatten",
                          projection_size=8, projection_hidden_size=16, num_workers=0, progress=False,
                          batch_size=4, num_train_steps=6, checkpoint_every=2, log_every=1,
                          output_dir=str(tmp_path / "run"))
    with pytest.raises(NonFiniteStateError, match=r"net\.bn\.running_mean holds NaN or infinite values at step 4"):
        trainer()
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["checkpoint-00000002.pt"]
    saved = torch.load(tmp_path / "run" / "net.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in saved.values() if v.is_floating_point())
    assert [r["loss"] for r in trainer.history if "loss" in r][-1] == pytest.approx(
        trainer.history[-1]["loss"])  # the loss itself stayed finite


def test_stale_temporary_files_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    stale = [tmp_path / f".net.pt.tmp-{host}-{dead.pid}", tmp_path / f".checkpoint-00000002.pt.tmp-{dead.pid}"]
    live = tmp_path / f".net.pt.tmp-{host}-{os.getpid()}"
    elsewhere = tmp_path / f".net.pt.tmp-another-host-{dead.pid}"
    for path in [*stale, live, elsewhere]:
        path.write_bytes(b"partial")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, elsewhere.name])
    shutil.rmtree(tmp_path)
    assert remove_stale_temporaries(tmp_path) == []
