"""What the command-line tests share: a tiny run's flags, stdout and stderr captured, a usage error checked."""

from __future__ import annotations

import contextlib
import io

import pytest

# A few seconds of training: 4 steps of 8 images at 16 px, stock ResNet-18 stem.
TINY_OPTIONS = {"--steps": "4", "--batch-size": "8", "--image-size": "16", "--model": "resnet18",
                "--num-workers": "0", "--projection-hidden-size": "32", "--knn-every": "2",
                "--checkpoint-every": "2", "--mixed-precision": "no", "--threads": "1"}
TINY_SWITCHES = ["--no-small-image-stem", "--no-progress"]


def tiny(*, drop: tuple[str, ...] = (), **changes: str) -> list[str]:
    """TINY's flags with some changed (``knn_every="0"``) or dropped (``drop=("--model",)``)."""
    options = {**TINY_OPTIONS, **{"--" + k.replace("_", "-"): v for k, v in changes.items()}}
    args = [x for flag, value in options.items() if flag not in drop for x in (flag, value)]
    return args + [s for s in TINY_SWITCHES if s not in drop]


def reset_accelerate() -> None:
    """Forgets Accelerate's process-wide state (for module-scoped fixtures, where the per-test fixture cannot)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


class Capture:
    """Collects stdout/stderr inside a module-scoped fixture (capsys is per test)."""

    def __enter__(self) -> Capture:
        self._out, self._err = io.StringIO(), io.StringIO()
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(self._out))
        self._stack.enter_context(contextlib.redirect_stderr(self._err))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self.out, self.err = self._out.getvalue(), self._err.getvalue()


def assert_usage_error(code: int, capsys: pytest.CaptureFixture[str], *phrases: str) -> str:
    """Checks that a command exited with a one-line usage error holding every phrase; returns the line."""
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("byol-pytorch: error: ") and "\n" not in err, err
    for phrase in phrases:
        assert phrase in err, err
    return err
