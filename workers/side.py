"""The worker's side thread: its own heartbeat row (read by /metrics, also while idle or busy
training) and webhooks — `task.completed` found by scanning judgments, then every due delivery
sent with retries. Runs beside the main loop so a long training run delays neither."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import delete, text

from app.config import Settings
from app.db import session_scope
from app.models import WorkerHeartbeat, utcnow
from app.webhooks import delivery

log = logging.getLogger("prefloop.worker")

TICK_S = 1.0
_SCAN_LOCK_KEY = 0x7072_6568  # serializes task scans across PostgreSQL workers


def beat(worker_id: str) -> None:
    with session_scope() as session:
        row = session.get(WorkerHeartbeat, worker_id)
        if row is None:
            session.add(WorkerHeartbeat(worker_id=worker_id, started_at=utcnow()))
        else:
            row.heartbeat_at = utcnow()


def forget(worker_id: str) -> None:
    """A cleanly stopped worker is no longer reported (a killed one ages on the dashboard)."""
    with session_scope() as session:
        session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker_id))


def webhooks_once(settings: Settings) -> int:
    """One pass: scan for completed tasks, then send what is due; returns attempts made."""
    with session_scope() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCAN_LOCK_KEY})
        delivery.scan_completed_tasks(session)
    sent = 0
    while True:  # drain what is due now, one batch at a time
        n = delivery.deliver_due(settings)
        sent += n
        if n < delivery.BATCH:
            return sent


class SideThread(threading.Thread):
    def __init__(self, worker_id: str, settings: Settings) -> None:
        super().__init__(name="prefloop-worker-side", daemon=True)
        self.worker_id, self.settings = worker_id, settings
        self.stopping = threading.Event()

    def run(self) -> None:
        last_beat = 0.0
        while not self.stopping.is_set():
            if time.monotonic() - last_beat >= self.settings.heartbeat_seconds:
                try:
                    beat(self.worker_id)
                    last_beat = time.monotonic()
                except Exception:
                    log.exception("worker heartbeat failed")
            try:
                webhooks_once(self.settings)
            except Exception:
                log.exception("webhook pass failed")
            self.stopping.wait(TICK_S)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=self.settings.webhook_timeout_s + 5)
        try:
            forget(self.worker_id)
        except Exception:
            log.exception("could not remove the heartbeat of %s", self.worker_id)
