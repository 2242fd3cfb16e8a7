"""The callback interface: each event reaches the callbacks that override it, in order, with its arguments."""

from __future__ import annotations

import pytest

from byol_pytorch.training.callbacks.base import CallbackList, TrainerCallback, TrainerControl, TrainerState


class Noting(TrainerCallback):
    def __init__(self, name: str, seen: list) -> None:
        self.name, self.seen = name, seen

    def on_step_end(self, trainer, state, control, **kwargs):
        self.seen.append((self.name, trainer, state.step, control.should_save, kwargs))


def test_events_reach_the_callbacks_that_override_them_in_order() -> None:
    seen: list = []
    callbacks = CallbackList([Noting("a", seen), TrainerCallback(), Noting("b", seen)])
    state, control = TrainerState(max_steps=3, step=2), TrainerControl(should_save=True)
    callbacks.call("on_step_end", "the trainer", state, control, extra=1)
    assert seen == [("a", "the trainer", 2, True, {"extra": 1}), ("b", "the trainer", 2, True, {"extra": 1})]
    callbacks.call("on_log", "the trainer", state, control, logs={})  # nobody overrides it: nothing happens
    assert len(seen) == 2 and len(list(callbacks)) == 3


def test_the_base_class_keeps_nothing_and_only_callbacks_are_taken() -> None:
    assert TrainerCallback().state_dict() is None and TrainerCallback.checkpoint_key is None
    with pytest.raises(TypeError, match="callbacks must be TrainerCallback instances, got str"):
        CallbackList(["on_step_end"])  # type: ignore[list-item]
