"""Trainer callback for progress reporting and cooperative cancellation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

ProgressFn = Callable[[int, int, dict[str, Any]], None]
StopFn = Callable[[], bool]


class Cancelled(RuntimeError):
    """Training was stopped early on request; no model was registered."""


class ProgressCallback(TrainerCallback):
    """Report ``(step, total, logs)`` after each step/log and stop when ``should_stop()`` is true.

    ``control.should_training_stop`` is set when a stop is requested, which ``transformers.Trainer``
    honours after the current step. Trainers that ignore that flag (TRL's experimental PPO loop)
    are interrupted by raising :class:`Cancelled` when ``hard_stop`` is true. Logged dicts are
    also kept in ``history`` (with their ``step``) for building training curves.
    """

    def __init__(
        self,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
        hard_stop: bool = False,
    ) -> None:
        self.progress = progress
        self.should_stop = should_stop
        self.hard_stop = hard_stop
        self.stopped = False
        self.history: list[dict[str, Any]] = []

    def _check_stop(self, control: Any) -> None:
        if self.should_stop is not None and self.should_stop():
            self.stopped = True
            control.should_training_stop = True
            if self.hard_stop:
                raise Cancelled("training cancelled")

    def _report(self, state: Any, logs: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress(int(state.global_step), int(state.max_steps or 0), logs)

    def on_train_begin(self, args, state, control, **kwargs):
        self._check_stop(control)
        return control

    def on_step_end(self, args, state, control, **kwargs):
        self._report(state, {})
        self._check_stop(control)
        return control

    def on_substep_end(self, args, state, control, **kwargs):
        self._check_stop(control)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        self.history.append({"step": int(state.global_step), **logs})
        self._report(state, logs)
        self._check_stop(control)
        return control
