"""Runs a script as ``python SCRIPT ARGS...`` would, in a process forked from one that imported the package once.

A fresh interpreter spends about 4 CPU-seconds importing torch, torchvision,
scikit-learn and matplotlib before a script's first line runs, and the suite
runs dozens of scripts. Here a forkserver (one per test process) imports them
once and every run is a child forked from it. The child is a process of its
own: its own pid (a SIGKILL ends it alone, with exit status -9), working
folder, environment, ``sys.argv``, ``__main__``, standard output and error.
Only the interpreter's start-up is not repeated; ``tests/test_cli.py`` runs the
installed console script and ``python -m byol_pytorch`` in fresh interpreters.
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

# What a command-line run imports; a module missing here is imported by each child instead.
PRELOAD = ["byol_pytorch.cli", "byol_pytorch.cli.train", "byol_pytorch.trainer", "byol_pytorch.report",
           "sklearn.datasets", "sklearn.model_selection", "matplotlib.figure", "matplotlib.backends.backend_agg"]
_CONTEXT: multiprocessing.context.ForkServerContext | None = None


def _context() -> multiprocessing.context.ForkServerContext:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(PRELOAD)
    return _CONTEXT


def _exit_status(stop: SystemExit) -> int:
    """The status ``python`` exits with for ``sys.exit(code)``; a message is printed and gives 1."""
    if stop.code is None or isinstance(stop.code, int):
        return stop.code or 0
    print(stop.code, file=sys.stderr)
    return 1


def _child(script: str, args: list[str], env: dict[str, str], cwd: str, stdout: str, stderr: str) -> None:
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    if env.get("OMP_NUM_THREADS", "").isdigit():  # read by torch at start-up, which the forkserver did
        import torch

        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    for fd, path in ((1, stdout), (2, stderr)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).parent))  # as ``python SCRIPT`` puts the script's folder first
    status = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        status = _exit_status(stop)
    except BaseException:  # noqa: BLE001 - reported as the interpreter would, then exit 1
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


class ForkedRun:
    """A script started by :func:`start`; ``wait`` gives what ``subprocess.run`` would."""

    def __init__(self, script: Path, args: Sequence[str], env: Mapping[str, str] | None, cwd: Path | None) -> None:
        self.args = [str(script), *map(str, args)]
        self._folder = tempfile.TemporaryDirectory(prefix="forked-")
        self._out, self._err = (os.path.join(self._folder.name, name) for name in ("stdout", "stderr"))
        self._process = _context().Process(
            target=_child, args=(str(script), self.args[1:], dict(os.environ if env is None else env),
                                 str(cwd or os.getcwd()), self._out, self._err))
        self._process.start()
        self.pid = self._process.pid

    def poll(self) -> int | None:
        """The exit status, or None while it runs."""
        return self._process.exitcode

    def kill(self) -> None:
        self._process.kill()

    def wait(self, timeout: float = 300) -> subprocess.CompletedProcess:
        """Waits for the end; kills the run and raises ``TimeoutExpired`` after ``timeout`` seconds."""
        self._process.join(timeout)
        if self._process.exitcode is None:
            self.kill()
            self._process.join()
            raise subprocess.TimeoutExpired(self.args, timeout)
        try:  # a child that died before taking its outputs left no files
            out, err = (Path(path).read_text() if os.path.exists(path) else "" for path in (self._out, self._err))
        finally:
            self._folder.cleanup()
        return subprocess.CompletedProcess(self.args, self._process.exitcode, out, err)


def start(script: Path, args: Sequence[str], env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> ForkedRun:
    """Starts ``python script *args`` (forked; see the module's docstring) and returns at once."""
    return ForkedRun(script, args, env, cwd)


def run(script: Path, args: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """``subprocess.run([sys.executable, script, *args], capture_output=True, text=True)``, forked."""
    return start(script, args, env, cwd).wait(timeout)
