"""Run queue: create, claim (SKIP LOCKED on PostgreSQL), heartbeat, finish, cancel, reclaim."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from app.db import is_postgres
from app.models import Run, RunKind, RunStatus, utcnow
from app.ops.errors import MAX_DB_ID

LOG_TAIL_CHARS = 8000


class RunError(ValueError):
    """A run request that cannot be honoured (HTTP 409 / CLI error)."""


class RunNotFound(RunError):
    pass


class RunParamError(RunError):
    """Parameters that do not validate against the kind's model; `issues` name the fields."""

    def __init__(self, issues: list[dict[str, Any]], message: str) -> None:
        self.issues = issues
        super().__init__(message)


def tail(text: str, limit: int = LOG_TAIL_CHARS) -> str:
    return text[-limit:]


def create_run(
    session: Session, kind: RunKind | str, params: dict[str, Any] | None, user_id: int | None
) -> Run:
    """Queue a run of `kind` with `params` (validated by the kind's model in ml/params.py)."""
    from ml.params import ParamError, parse

    try:
        kind = RunKind(kind)
    except ValueError as e:
        raise RunError(
            f"unknown run kind {kind!r}; expected one of {[k.value for k in RunKind]}"
        ) from e
    try:
        stored = parse(kind.value, params or {}).stored()
    except ParamError as e:
        raise RunParamError(e.issues, f"invalid {kind.value} params: {e}") from None
    run = Run(kind=kind, params=stored, created_by_id=user_id, status=RunStatus.queued)
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, run_id: int) -> Run:
    # ids are int4: a larger number cannot be one (and overflows the driver)
    run = session.get(Run, run_id) if 1 <= run_id <= MAX_DB_ID else None
    if run is None:
        raise RunNotFound(f"no run {run_id}")
    return run


def list_runs(
    session: Session,
    status: RunStatus | None = None,
    kind: RunKind | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Run]:
    """Newest first."""
    q = select(Run).order_by(Run.id.desc()).limit(limit)
    if status:
        q = q.where(Run.status == status)
    if kind:
        q = q.where(Run.kind == kind)
    if before_id:
        q = q.where(Run.id < before_id)
    return list(session.scalars(q))


def request_cancel(session: Session, run_id: int) -> Run:
    """Cancel a queued run at once; ask a running one to stop (its worker notices in seconds)."""
    run = session.get(Run, run_id, with_for_update=True) if 1 <= run_id <= MAX_DB_ID else None
    if run is None:
        raise RunNotFound(f"no run {run_id}")
    if run.status == RunStatus.queued:
        run.status = RunStatus.cancelled
        run.cancel_requested = True
        run.finished_at = utcnow()
        run.log_tail = tail(run.log_tail + "cancelled before it started\n")
    elif run.status == RunStatus.running:
        run.cancel_requested = True
    else:
        raise RunError(f"run {run_id} already {run.status.value}")
    session.flush()
    return run


def claim_next(session: Session, worker_id: str, kinds: list[RunKind] | None = None) -> Run | None:
    """Take the oldest queued run for this worker. Two workers never claim the same run:
    PostgreSQL skips rows another transaction holds, SQLite runs this under BEGIN IMMEDIATE."""
    q = select(Run).where(Run.status == RunStatus.queued).order_by(Run.id).limit(1)
    if kinds:
        q = q.where(Run.kind.in_(kinds))
    if is_postgres(session):
        q = q.with_for_update(skip_locked=True)
    run = session.scalar(q)
    if run is None:
        return None
    now = utcnow()
    run.status = RunStatus.running
    run.worker_id = worker_id
    run.attempts += 1
    run.heartbeat_at = now
    run.started_at = now
    run.error = None
    run.log_tail = tail(
        run.log_tail + f"[{now:%H:%M:%S}] attempt {run.attempts} claimed by {worker_id}\n"
    )
    session.flush()
    return run


def _owned(run_id: int, worker_id: str) -> ColumnElement[bool]:
    return (Run.id == run_id) & (Run.worker_id == worker_id) & (Run.status == RunStatus.running)


def heartbeat(session: Session, run_id: int, worker_id: str) -> tuple[bool, bool]:
    """Refresh the heartbeat; returns (still ours, cancel requested)."""
    session.execute(update(Run).where(_owned(run_id, worker_id)).values(heartbeat_at=utcnow()))
    row = session.execute(
        select(Run.status, Run.worker_id, Run.cancel_requested).where(Run.id == run_id)
    ).first()
    if row is None:
        return False, True
    ours = row[0] == RunStatus.running and row[1] == worker_id
    return ours, bool(row[2])


def record_progress(
    session: Session,
    run_id: int,
    worker_id: str,
    step: int | None = None,
    total: int | None = None,
    metrics: dict[str, Any] | None = None,
    log_lines: str = "",
) -> bool:
    """Write progress, live metrics and new log lines; False if the run is no longer ours."""
    run = session.get(Run, run_id)
    if run is None or run.worker_id != worker_id or run.status != RunStatus.running:
        return False
    if step is not None:
        run.progress_step = step
    if total is not None:
        run.progress_total = total
    if metrics:
        run.metrics = {**(run.metrics or {}), **metrics}
    if log_lines:
        run.log_tail = tail(run.log_tail + log_lines)
    run.heartbeat_at = utcnow()
    session.flush()
    return True


def finish(
    session: Session,
    run_id: int,
    worker_id: str,
    status: RunStatus,
    metrics: dict[str, Any] | None = None,
    error: str | None = None,
    log_lines: str = "",
) -> bool:
    """Close a run this worker owns; False if it was reclaimed meanwhile (nothing written)."""
    run = session.get(Run, run_id, with_for_update=True)
    if run is None or run.worker_id != worker_id or run.status != RunStatus.running:
        return False
    run.status = status
    run.finished_at = utcnow()
    run.heartbeat_at = run.finished_at
    if metrics:
        run.metrics = {**(run.metrics or {}), **metrics}
    run.error = error
    run.log_tail = tail(run.log_tail + log_lines)
    if status != RunStatus.succeeded:
        from app.models_registry.service import fail_versions_of_run

        fail_versions_of_run(session, run_id)
    session.flush()
    _announce(session, run)
    return True


def _announce(session: Session, run: Run) -> None:
    """run.succeeded / run.failed webhooks, queued in the transaction that finishes the run."""
    if run.status not in (RunStatus.succeeded, RunStatus.failed):
        return
    from app.webhooks.events import emit

    data = {
        "run_id": run.id,
        "kind": str(run.kind),
        "status": str(run.status),
        "params": run.params or {},
        "metrics": run.metrics or {},
        "error": run.error,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
    emit(session, f"run.{run.status}", data)


def requeue(session: Session, run_id: int, worker_id: str, reason: str) -> bool:
    """Give a run back to the queue (worker shutting down); the attempt is not counted."""
    run = session.get(Run, run_id, with_for_update=True)
    if run is None or run.worker_id != worker_id or run.status != RunStatus.running:
        return False
    from app.models_registry.service import fail_versions_of_run

    fail_versions_of_run(session, run_id)
    if run.cancel_requested:
        run.status = RunStatus.cancelled
        run.finished_at = utcnow()
    else:
        run.status = RunStatus.queued
        run.attempts = max(run.attempts - 1, 0)
    run.worker_id = None
    run.log_tail = tail(run.log_tail + f"[{utcnow():%H:%M:%S}] {reason}\n")
    session.flush()
    return True


def reclaim_stale(
    session: Session, stale_after_s: float, max_attempts: int, now: datetime | None = None
) -> list[tuple[int, str]]:
    """Runs whose worker stopped heartbeating: re-queued while attempts remain, else failed.

    Model versions such a run was writing are marked failed. Returns (run id, new status)."""
    from app.models_registry.service import fail_versions_of_run

    now = now or utcnow()
    cutoff = now - timedelta(seconds=stale_after_s)
    q = (
        select(Run)
        .where(Run.status == RunStatus.running, Run.heartbeat_at < cutoff)
        .order_by(Run.id)
    )
    if is_postgres(session):
        q = q.with_for_update(skip_locked=True)
    done: list[tuple[int, str]] = []
    for run in session.scalars(q):
        last = run.heartbeat_at
        reason = (
            f"worker {run.worker_id} stopped heartbeating (last heartbeat {last:%Y-%m-%d %H:%M:%S}"
            f" UTC, > {stale_after_s:g}s ago)"
        )
        fail_versions_of_run(session, run.id)
        if run.cancel_requested:
            run.status = RunStatus.cancelled
            run.finished_at = now
        elif run.attempts < max_attempts:
            run.status = RunStatus.queued
            reason += f"; re-queued (attempt {run.attempts} of {max_attempts})"
        else:
            run.status = RunStatus.failed
            run.error = reason
            run.finished_at = now
        run.worker_id = None
        run.log_tail = tail(run.log_tail + f"[{now:%H:%M:%S}] {reason}\n")
        done.append((run.id, run.status.value))
    session.flush()
    for run_id, status in done:
        if status == RunStatus.failed:
            _announce(session, session.get_one(Run, run_id))
    return done


def count_active(session: Session, kind: RunKind) -> int:
    """Queued or running runs of `kind`."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Run)
            .where(Run.kind == kind, Run.status.in_([RunStatus.queued, RunStatus.running]))
        )
        or 0
    )
