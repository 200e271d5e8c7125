"""The worker loop: claim queued runs, heartbeat them, honour cancellation, reclaim stale runs,
and keep PREFLOOP_QUEUE_TARGET open comparison tasks ready (auto generate runs)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text

from app.config import Settings, get_settings
from app.db import is_postgres, session_scope
from app.models import ComparisonTask, Prompt, Run, RunKind, RunStatus, TaskStatus, utcnow
from app.runs import service as runs
from ml.device import set_torch_threads
from workers.context import JobContext
from workers.jobs import job_for
from workers.side import SideThread

log = logging.getLogger("prefloop.worker")

FILL_EVERY_S = 5.0
FILL_BACKOFF_S = 60.0
_FILL_LOCK_KEY = 0x7072_6566  # "pref": serializes queue-target checks across PostgreSQL workers


class Shutdown(Exception):
    """Raised in the job's thread when the worker is told to stop twice."""


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def open_task_count(session: Any) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(ComparisonTask)
            .where(ComparisonTask.status == TaskStatus.open)
            .where(ComparisonTask.judgment_count < ComparisonTask.required_judgments)
        )
        or 0
    )


def maybe_fill_queue(session: Any, settings: Settings) -> Run | None:
    """Queue an automatic generate run when open tasks < queue_target and prompts exist.

    Skipped while a generate run is queued or running, and for a minute after an automatic run
    failed (so a broken model does not produce a failure loop)."""
    target = settings.queue_target
    if target <= 0:
        return None
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _FILL_LOCK_KEY})
    if runs.count_active(session, RunKind.generate):
        return None
    missing = target - open_task_count(session)
    if missing <= 0 or not session.scalar(select(Prompt.id).limit(1)):
        return None
    last = session.scalar(
        select(Run).where(Run.kind == RunKind.generate).order_by(Run.id.desc()).limit(1)
    )
    if (
        last is not None
        and last.status == RunStatus.failed
        and last.finished_at is not None
        and utcnow() - last.finished_at < timedelta(seconds=FILL_BACKOFF_S)
    ):
        return None
    k = max(settings.generate_k, 2)
    return runs.create_run(
        session, RunKind.generate, {"auto": True, "prompts": missing, "k": k}, None
    )


class Worker:
    """One worker process; several may run against the same PostgreSQL database."""

    def __init__(
        self,
        worker_id: str | None = None,
        settings: Settings | None = None,
        poll_s: float = 1.0,
        fill_queue: bool = True,
        kinds: list[RunKind] | None = None,
    ) -> None:
        self.worker_id = worker_id or default_worker_id()
        self.settings = settings or get_settings()
        self.poll_s = poll_s
        self.fill_queue = fill_queue
        self.kinds = kinds
        self.stopping = threading.Event()
        self.current: JobContext | None = None
        self._last_fill = 0.0
        self._signals = 0

    # lifecycle -----------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM: finish cleanly (the current run is re-queued); twice: stop now."""

        def handler(signum: int, _frame: Any) -> None:
            self._signals += 1
            self.stop()
            if self._signals > 1:
                raise Shutdown(f"signal {signum} received twice")

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def stop(self) -> None:
        self.stopping.set()
        if self.current is not None:
            self.current.stop_event.set()

    def serve_forever(self, exit_when_idle: bool = False, bootstrap: bool = True) -> None:
        """Loop until stop(); with exit_when_idle, return once no queued run is left."""
        log.info("worker %s started", self.worker_id)
        set_torch_threads(self.settings.torch_threads)
        side = SideThread(self.worker_id, self.settings)  # heartbeat row and webhooks
        side.start()
        try:
            self._loop(exit_when_idle, bootstrap)
        finally:
            side.stop()
        log.info("worker %s stopped", self.worker_id)

    def _loop(self, exit_when_idle: bool, bootstrap: bool) -> None:
        if bootstrap and self.fill_queue and not self.stopping.is_set():
            self.bootstrap()
        failures = 0
        while not self.stopping.is_set():
            try:
                did = self.tick()
                failures = 0
            except Exception:  # e.g. the database is briefly unreachable: back off, keep going
                failures += 1
                log.exception("worker loop error (%d in a row)", failures)
                self.stopping.wait(min(2.0**failures, 60.0))
                continue
            if not did:
                if exit_when_idle:
                    break
                self.stopping.wait(self.poll_s)

    def bootstrap(self) -> None:
        """Make sure an active policy exists (logged, not fatal: generate runs report it)."""
        from workers.bootstrap_policy import BootstrapError, ensure_active_policy

        try:
            mv = ensure_active_policy(self.settings, log=log.info)
            if mv is not None:
                log.info("active policy: %s (%s)", mv.version, mv.path)
        except BootstrapError as e:
            log.warning("no active policy: %s", e)
        except Exception:
            log.exception("bootstrapping the policy failed")

    # one iteration ---------------------------------------------------------------------------
    def tick(self) -> bool:
        """Reclaim stale runs, maybe queue a generate run, run one queued run (True if it did)."""
        s = self.settings
        with session_scope() as session:
            for run_id, status in runs.reclaim_stale(
                session, s.stale_after_seconds, s.max_attempts
            ):
                log.warning("run %s had a stale heartbeat: now %s", run_id, status)
        if self.fill_queue and time.monotonic() - self._last_fill >= FILL_EVERY_S:
            self._last_fill = time.monotonic()
            try:
                with session_scope() as session:
                    run = maybe_fill_queue(session, s)
                    if run is not None:
                        log.info("open tasks below target: queued generate run %s", run.id)
            except Exception:
                log.exception("queue-target check failed")
            # training scheduler (workers/scheduler.py): reward run after N judgments / T minutes,
            # PPO run after a new reward model; each trigger is off when its setting is 0/false
            try:
                from workers import scheduler

                with session_scope() as session:
                    for queued in scheduler.tick(session, s):
                        log.info("training scheduler queued run %s", queued)
            except Exception:
                log.exception("training scheduler failed")
            try:  # arena: stock campaigns with battles, settle promotion gates
                from workers import arena

                with session_scope() as session:
                    for queued in arena.tick(session, s):
                        log.info("arena queued battle run %s", queued)
            except Exception:
                log.exception("arena tick failed")
        with session_scope() as session:
            run = runs.claim_next(session, self.worker_id, self.kinds)
            if run is None:
                return False
            claimed = (run.id, run.kind, dict(run.params or {}))
        self.execute(*claimed)
        return True

    def execute(self, run_id: int, kind: RunKind, params: dict[str, Any]) -> None:
        """Run one claimed run to a terminal state (or back to the queue on shutdown)."""
        from ml.callbacks import Cancelled

        ctx = JobContext(run_id=run_id, params=params, settings=self.settings)
        ctx.worker_id = self.worker_id
        self.current = ctx
        if self.stopping.is_set():
            ctx.stop_event.set()
        beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(ctx, beat_stop), daemon=True)
        beat.start()
        log.info("run %s (%s) started", run_id, kind.value)
        status, metrics, error, extra = RunStatus.failed, None, None, ""
        try:
            job = job_for(kind)
            metrics = job(ctx) or {}
            status = RunStatus.succeeded
        except (Cancelled, Shutdown) as e:
            status, error = RunStatus.cancelled, None
            extra = f"stopped: {e}\n"
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
            extra = traceback.format_exc()[-3000:]
            log.error("run %s failed: %s", run_id, error)
        finally:
            beat_stop.set()
            beat.join(timeout=10)
            self.current = None
        ctx.flush()
        with session_scope() as session:
            if ctx.lost:
                log.warning("run %s was reclaimed by another worker; result dropped", run_id)
            elif status == RunStatus.cancelled and self.stopping.is_set():
                cur = runs.get_run(session, run_id)
                if not cur.cancel_requested:
                    runs.requeue(session, run_id, self.worker_id, "worker shut down; re-queued")
                    log.info("run %s re-queued (worker shutting down)", run_id)
                    return
                runs.finish(session, run_id, self.worker_id, status, metrics, error, extra)
            else:
                runs.finish(session, run_id, self.worker_id, status, metrics, error, extra)
        log.info("run %s %s", run_id, status.value)

    def _heartbeat(self, ctx: JobContext, done: threading.Event) -> None:
        """Every heartbeat_seconds: write pending logs + heartbeat, notice cancellation."""
        while not done.wait(self.settings.heartbeat_seconds):
            try:
                ctx.flush()
                with session_scope() as session:
                    ours, cancel = runs.heartbeat(session, ctx.run_id, self.worker_id)
                if cancel or not ours:
                    ctx.lost = ctx.lost or not ours
                    ctx.stop_event.set()
            except Exception:
                log.exception("heartbeat for run %s failed", ctx.run_id)
