"""The README's own promises: its first two commands are the demo and CI's test command, and it starts with the
usage a newcomer needs. Running its code (and the guides') is tests/test_docs.py's."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_docs import python_blocks

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_has_the_usage_blocks() -> None:
    blocks = [block.source for block in python_blocks(README)]
    assert len(blocks) >= 2
    assert "learner.update_moving_average()" in blocks[0] and "BYOLTrainer(" in "".join(blocks)


def test_readme_stays_a_five_minute_read() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300
    assert "![BYOL: two views" in "\n".join(lines[:10]) and "](diagram.png)" in "\n".join(lines[:10])


def test_the_two_commands_are_the_first_command_and_what_ci_runs() -> None:
    commands = re.findall(r"```bash\n(.*?)\n```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert commands[:2] == ["pip install . && byol-pytorch train", "pip install -e '.[test]' && pytest"]
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    # A line of its own, run before the minimum-versions job that follows it.
    assert commands[1] in ci and ci.index(commands[1]) < ci.index("python3 -m venv /tmp/byol-ci-min-venv")
