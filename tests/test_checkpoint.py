"""When the trainer checkpoints: every N steps or every so much training time, every process at the same step."""

from __future__ import annotations

import pytest

from byol_pytorch.checkpoint import CheckpointSchedule
from byol_pytorch.config import parse_duration


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90.0), ("30min", 1800.0), ("30m", 1800.0), ("2h", 7200.0),
                                               ("1.5h", 5400.0), (" 10 sec ", 10.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "30 parsecs", "-5min", "0s", "min", ""])
def test_bad_durations_name_the_value(text: str) -> None:
    with pytest.raises(ValueError, match=f"a step count or a duration such as 90s, 30min or 2h, got {text!r}"):
        parse_duration(text)


def test_by_steps() -> None:
    schedule = CheckpointSchedule(3)
    assert [step for step in range(1, 10) if schedule.due(step)] == [3, 6, 9]


def test_by_time_reads_the_clock_at_the_logging_steps_and_counts_from_the_last_save() -> None:
    now = [0.0]
    schedule = CheckpointSchedule("1min", check_every=5, clock=lambda: now[0])
    due = []
    for step in range(1, 41):
        now[0] += 4.0  # 4 s a step: 60 s are reached at step 15, then 15 steps after each save
        if schedule.due(step):
            due.append(step)
            schedule.saved()
    assert due == [15, 30]
    now[0] += 1000.0
    assert not schedule.due(41)  # not a step the clock is read at
    assert schedule.due(45)


def test_every_process_follows_the_main_process_verdict() -> None:
    now = [100.0]
    schedule = CheckpointSchedule("10s", clock=lambda: now[0])
    asked = []

    def main_says_no(verdict: bool) -> bool:
        asked.append(verdict)
        return False

    now[0] += 11.0
    assert not schedule.due(1, main_says_no) and asked == [True]
    assert schedule.due(2, lambda verdict: True)
    assert CheckpointSchedule(2).due(2, main_says_no) and asked == [True]  # steps need no agreement
