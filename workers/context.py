"""What a job sees: its run id and params, progress/log reporting, cancellation, sessions."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.db import session_scope
from app.runs import service as runs

PROGRESS_EVERY_S = 0.5
CANCEL_POLL_S = 1.0


@dataclass
class JobContext:
    """Handed to `run(ctx)`; all methods are safe to call from the job's thread."""

    run_id: int
    params: dict[str, Any]
    settings: Settings
    worker_id: str = "worker"
    stop_event: threading.Event = field(default_factory=threading.Event)
    _pending_log: list[str] = field(default_factory=list)
    _pending_metrics: dict[str, Any] = field(default_factory=dict)
    _step: int | None = None
    _total: int | None = None
    _last_write: float = 0.0
    _last_cancel_check: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    lost: bool = False

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A sync session that commits on exit (one unit of work)."""
        with session_scope() as s:
            yield s

    def log(self, line: str) -> None:
        """Append a line to the run's log tail (flushed with the next progress or heartbeat)."""
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        with self._lock:
            self._pending_log.append(f"[{stamp}] {line.rstrip()}\n")

    def progress(self, step: int, total: int, metrics: dict[str, Any] | None = None) -> None:
        """Report progress and live metrics; written at most every 0.5 s (always the last step)."""
        with self._lock:
            self._step, self._total = step, total
            if metrics:
                self._pending_metrics.update(metrics)
        now = time.monotonic()
        if now - self._last_write < PROGRESS_EVERY_S and step < total:
            return
        self._last_write = now
        self.flush()

    def flush(self) -> None:
        """Write pending progress, metrics and log lines now."""
        with self._lock:
            lines, self._pending_log = "".join(self._pending_log), []
            metrics, self._pending_metrics = self._pending_metrics, {}
            step, total = self._step, self._total
        with session_scope() as s:
            ok = runs.record_progress(s, self.run_id, self.worker_id, step, total, metrics, lines)
        if not ok:
            self.lost = True
            self.stop_event.set()

    def should_stop(self) -> bool:
        """True once cancellation was requested, the worker is shutting down or lost the run."""
        if self.stop_event.is_set():
            return True
        now = time.monotonic()
        if now - self._last_cancel_check >= CANCEL_POLL_S:
            self._last_cancel_check = now
            with session_scope() as s:
                ours, cancel = runs.heartbeat(s, self.run_id, self.worker_id)
            if cancel or not ours:
                self.lost = not ours
                self.stop_event.set()
        return self.stop_event.is_set()

    def check_stop(self) -> None:
        """Raise Cancelled if should_stop()."""
        if self.should_stop():
            from ml.callbacks import Cancelled

            raise Cancelled(f"run {self.run_id} stopped")
