"""Stopping on SIGTERM, SIGINT and SIGUSR1: the step is saved, the status says why, resume continues exactly.

The signals are sent by the runs themselves after a chosen step (``BYOL_FAULT``
of ``tests/scripts/faulty_cli.py``), so the step they land on is known. One
process runs in this process or forked (the command line); two run under
``accelerate launch`` over gloo, each from a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch

from byol_pytorch import preemption
from byol_pytorch.checkpoint import list_checkpoints, safe_load
from byol_pytorch.preemption import TrainingStopped
from byol_pytorch.trainer import BYOLTrainer

from . import forked
from .conftest import free_port

SCRIPTS = Path(__file__).parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
import faulty_cli  # noqa: E402
import preempt_run  # noqa: E402

STATUS = {"TERM": 143, "INT": 130, "USR1": 138}
STEPS = 6  # preempt_run: 40 images of 4 a process; with 2 processes an epoch is 5 steps


def steps_logged(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def reads(files: list[Path]) -> list[int]:
    return [int(line) for path in files for line in path.read_text().split()]


def read_logs(run: Path) -> set[Path]:
    return set(run.glob("read-*.txt"))


def assert_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert all(torch.isfinite(v).all() for v in a.values() if v.is_floating_point())


def train_in_process(run: Path, steps: int = STEPS, resume: bool = False) -> tuple[BYOLTrainer, list[str]]:
    """preempt_run's trainer here, with the warnings it gave."""
    torch.use_deterministic_algorithms(True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer = preempt_run.build_trainer(run, steps, resume)
            try:
                trainer()
            finally:
                trainer.warned = [str(w.message) for w in caught]  # type: ignore[attr-defined]
    finally:
        torch.use_deterministic_algorithms(False)
    return trainer, trainer.warned  # type: ignore[attr-defined]


@pytest.fixture
def signal_after(monkeypatch: pytest.MonkeyPatch):
    """Makes this process send itself a signal after a step (as BYOL_FAULT=signal:0:STEP:NAME:self)."""
    def arm(step: int, name: str) -> None:
        monkeypatch.setattr(BYOLTrainer, "_step_end", BYOLTrainer._step_end)
        faulty_cli.signal_after_step(0, step, name, "self")
    return arm


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    trainer, _ = train_in_process(tmp_path_factory.mktemp("whole") / "run")
    return preempt_run.learner_tensors(trainer)


# -- one process, in this process ----------------------------------------------------------


@pytest.mark.parametrize("name", ["TERM", "INT", "USR1"])
def test_a_signal_saves_the_step_it_stopped_after_and_resume_equals_an_uninterrupted_run(
        tmp_path: Path, signal_after, uninterrupted: dict[str, torch.Tensor], name: str) -> None:
    before = {signum: signal.getsignal(signum) for signum in preemption.STOP_SIGNALS}
    signal_after(2, name)
    run = tmp_path / "run"
    with pytest.raises(TrainingStopped) as stopped:
        train_in_process(run)
    # The step in progress when the signal came (3) finished and was saved; checkpoint_every is 100.
    assert stopped.value.code == STATUS[name] == 128 + getattr(signal, f"SIG{name}")
    assert (stopped.value.step, stopped.value.signal_name) == (3, f"SIG{name}")
    assert [p.name for p in list_checkpoints(run)] == ["checkpoint-00000003.pt"] == [stopped.value.checkpoint.name]
    assert safe_load(run / "checkpoint-00000003.pt")["step"] == 3
    assert {signum: signal.getsignal(signum) for signum in preemption.STOP_SIGNALS} == before  # put back

    resumed, _ = train_in_process(run, resume=True)
    assert resumed.start_step == 3 and resumed.step == STEPS
    assert_equal(preempt_run.learner_tensors(resumed), uninterrupted)
    assert steps_logged(run) == list(range(1, STEPS + 1))


def test_handlers_are_installed_only_while_training_and_can_be_left_out(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    original = BYOLTrainer._step_end

    def looking(self: BYOLTrainer, *args: Any) -> None:
        seen.append(signal.getsignal(signal.SIGTERM))
        original(self, *args)

    monkeypatch.setattr(BYOLTrainer, "_step_end", looking)
    before = signal.getsignal(signal.SIGTERM)
    trainer = preempt_run.build_trainer(tmp_path / "on", 1, False)
    trainer()
    assert seen[0] != before and signal.getsignal(signal.SIGTERM) == before
    preempt_run.build_trainer(tmp_path / "off", 1, False, handle_signals=False)()
    assert seen[1] == before


def test_a_second_signal_stops_at_once_and_a_repeat_within_the_window_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = BYOLTrainer._step_end

    def twice(self: BYOLTrainer, *args: Any) -> None:
        original(self, *args)
        if self.step == 1:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(BYOLTrainer, "_step_end", twice)
    with pytest.raises(TrainingStopped):  # the repeat came within REPEAT_WINDOW_S: one request
        preempt_run.build_trainer(tmp_path / "repeat", STEPS, False)()
    monkeypatch.setattr(preemption, "REPEAT_WINDOW_S", 0.0)
    with pytest.raises(KeyboardInterrupt):  # a second request: no waiting for the step
        preempt_run.build_trainer(tmp_path / "second", STEPS, False)()
    assert list_checkpoints(tmp_path / "second") == []


def test_resume_with_nothing_to_resume_says_so_and_sets_the_old_records_aside(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    run.mkdir()
    old = [{"step": 1, "loss": 9.0}, {"step": 2, "loss": 8.0}]  # a run killed before its first checkpoint
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old) + '{"step": 3, "lo')
    trainer = preempt_run.build_trainer(run, 2, True)
    trainer()
    out = capsys.readouterr().out
    assert f"nothing to resume in {run}: no checkpoint yet; starting a new run" in out
    assert "set aside 3 record(s)" in out
    assert steps_logged(run) == [1, 2] and all(r.get("loss") != 9.0 for r in trainer.history)
    assert [json.loads(line)["loss"] for line in (run / "metrics.superseded.jsonl").read_text().splitlines()[:2]] \
        == [9.0, 8.0]


# -- the command line, one process -------------------------------------------------------------------------

CLI = ["train", "--checkpoint-every", "100", "--batch-size", "16", "--no-final-eval", "--seed", "0",
       "--no-progress", "--model", "mobilenet_v3_small", "--log-every", "1"]


def run_cli(out: Path, steps: int, *extra: str, fault: str = "none") -> subprocess.CompletedProcess:
    env = {**os.environ, "BYOL_FAULT": fault, "OMP_NUM_THREADS": "1"}
    return forked.run(SCRIPTS / "faulty_cli.py", [*CLI, "--steps", str(steps), "--out", str(out), *extra], env=env,
                      timeout=300)


def test_the_command_line_stops_on_sigterm_with_status_143_and_resumes_to_the_same_network(tmp_path: Path) -> None:
    with ThreadPoolExecutor(2) as pool:
        whole = pool.submit(run_cli, tmp_path / "whole", 4)
        stopped = pool.submit(run_cli, tmp_path / "run", 4, fault="signal:0:1:TERM:self").result()
        assert whole.result().returncode == 0, whole.result().stderr[-2000:]
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert stopped.stderr.strip().splitlines()[-1] == (
        f"byol-pytorch: stopped by SIGTERM after step 2; saved {tmp_path / 'run' / 'checkpoint-00000002.pt'}; "
        f"exit status 143. Continue with: byol-pytorch train --out {tmp_path / 'run'} --resume")
    resumed = run_cli(tmp_path / "run", 4, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["steps"], summary["steps_this_session"]) == (4, 2)
    assert steps_logged(tmp_path / "run") == [1, 2, 3, 4]
    for name in ("net.pt", "checkpoint-00000004.pt"):
        a, b = safe_load(tmp_path / "run" / name), safe_load(tmp_path / "whole" / name)
        a, b = (a, b) if name == "net.pt" else (a["learner"], b["learner"])
        assert_equal(a, b)


# -- two processes (gloo) ---------------------------------------------------------------------------------------


def launch(out: Path, steps: int, *extra: str, fault: str = "none") -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), str(SCRIPTS / "preempt_run.py"), str(out), str(steps), *extra]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "BYOL_FAULT": fault}
    # A session of its own: a signal to the launch's process group must not reach pytest.
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False,
                          start_new_session=True)


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two-process runs: uninterrupted, and stopped by a signal to one rank, to the launcher, to the group."""
    root = tmp_path_factory.mktemp("two")
    faults = {"whole": "none", "rank1": "signal:1:1:USR1:self", "launcher": "signal:0:1:TERM:parent",
              "group": "signal:1:1:INT:group"}
    with ThreadPoolExecutor(2) as pool:
        done = {name: pool.submit(launch, root / name, STEPS, fault=fault) for name, fault in faults.items()}
        runs = {name: future.result() for name, future in done.items()}
    return {"root": root, "runs": runs}


@pytest.mark.parametrize(("name", "signal_name"), [("rank1", "USR1"), ("launcher", "TERM"), ("group", "INT")])
def test_both_processes_stop_after_the_same_step_and_save_it(two: dict[str, Any], name: str,
                                                            signal_name: str) -> None:
    run, result = two["root"] / name, two["runs"][name]
    assert result.returncode != 0  # the launcher reports its workers' status as a failure (1)
    stopped = re.search(rf"stopped by SIG{signal_name} after step (\d+); saved (\S+);", result.stdout)
    assert stopped, result.stdout[-2000:] + result.stderr[-2000:]
    step = int(stopped[1])
    # Sent after step 1, a request is read by every process within two steps. The launcher passes its
    # SIGTERM on a little later, so there the workers may stop a step further.
    assert step == 3 or (name == "launcher" and step == 4)
    assert stopped[2] == str(run / f"checkpoint-{step:08d}.pt")
    assert [p.name for p in list_checkpoints(run)] == [f"checkpoint-{step:08d}.pt"]
    # Each process read the batches of its steps (num_workers=0 reads nothing ahead), none the same image.
    per_rank = [reads(sorted(run.glob(f"read-{rank}-*.txt"))) for rank in (0, 1)]
    assert [len(r) for r in per_rank] == [4 * step, 4 * step] and len(set(per_rank[0] + per_rank[1])) == 8 * step
    if name != "launcher":  # the launcher lists the status of its workers (rank 0 of "rank1" was told, not signalled)
        assert f"exitcode: {STATUS[signal_name]})" in result.stderr or \
            f"exitcode  : {STATUS[signal_name]}" in result.stderr, result.stderr[-2000:]
    assert steps_logged(run) == list(range(1, step + 1))


def test_two_process_resume_equals_an_uninterrupted_two_process_run(two: dict[str, Any]) -> None:
    run = two["root"] / "rank1"
    resumed = launch(run, STEPS, "resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert two["runs"]["whole"].returncode == 0, two["runs"]["whole"].stderr[-3000:]
    assert_equal(torch.load(run / "final.pt", weights_only=True),
                 torch.load(two["root"] / "whole" / "final.pt", weights_only=True))
    assert steps_logged(run) == list(range(1, STEPS + 1))


def test_two_processes_resumed_on_one_read_the_rest_of_the_epoch_once_with_one_warning(
        two: dict[str, Any], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(two["root"] / "group", run)  # stopped after step 3 (its workers got the Ctrl-C at once)
    before = read_logs(run)
    trainer, warned = train_in_process(run, steps=8, resume=True)  # 5 steps of 4: the epoch's last 16 and 4 more
    assert trainer.step == 8 and trainer.epoch == 1
    changes = [w for w in warned if "process(es) instead of" in w]
    assert len(changes) == 1 and changes[0].startswith(
        "resuming step 3 with 1 process(es) instead of 2; a global batch of 4 images instead of 8")
    first_run, second_run = reads(sorted(before)), reads(sorted(read_logs(run) - before))
    assert sorted(first_run + second_run[:16]) == list(range(40))  # every image of epoch 0 once


def test_one_process_resumed_on_two_reads_the_rest_of_the_epoch_once_with_one_warning(
        tmp_path: Path, signal_after) -> None:
    run = tmp_path / "run"
    signal_after(1, "TERM")
    with pytest.raises(TrainingStopped):
        train_in_process(run)  # stops after step 2: 8 images of epoch 0 read
    before = read_logs(run)
    resumed = launch(run, STEPS, "resume")  # steps 3 to 6 of 8 images: the epoch's other 32
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    output = resumed.stdout + resumed.stderr
    assert output.count("process(es) instead of") == 1
    assert "resuming step 2 with 2 process(es) instead of 1; a global batch of 8 images instead of 4" in output
    assert sorted(reads(sorted(before)) + reads(sorted(read_logs(run) - before))) == list(range(40))


def test_the_slurm_scripts_of_the_docs_are_valid_bash() -> None:
    root = Path(__file__).resolve().parents[1]
    scripts = [block for doc in (root / "README.md", root / "docs" / "cluster.md")
               for block in re.findall(r"```bash\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S)
               if "scontrol requeue" in block]
    assert len(scripts) == 2
    for script in scripts:
        checked = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        assert "--resume" in script and "trap '" in script and "USR1" in script


def test_without_sigusr1_the_package_imports_and_handles_the_signals_that_exist(monkeypatch) -> None:
    """A system without SIGUSR1 (Windows): a fresh import reads no missing signal, and the others are handled."""
    import importlib.util

    monkeypatch.delattr(signal, "SIGUSR1")
    spec = importlib.util.spec_from_file_location("preemption_without_usr1", preemption.__file__)
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)  # a copy: the package's own module (and its classes) stay as they are
    assert fresh.STOP_SIGNALS == (signal.SIGTERM, signal.SIGINT)
    before = signal.getsignal(signal.SIGTERM)
    stops = fresh.StopSignals()
    with stops.installed():
        assert signal.getsignal(signal.SIGTERM) == stops._handle
        signal.raise_signal(signal.SIGTERM)
    assert stops.requested == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before
