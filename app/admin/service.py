"""Read-side queries behind the admin pages. Sync; pages call them through run_sync."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import is_postgres
from app.models import (
    Assignment,
    AssignmentStatus,
    ComparisonTask,
    Judgment,
    ModelKind,
    ModelVersion,
    Run,
    RunStatus,
    TaskStatus,
    utcnow,
)
from app.models_registry import service as registry
from app.runs import service as run_service

ACTIVE_LABELER_DAYS = 7


@dataclass
class Dashboard:
    per_day: list[tuple[str, int]]
    open_tasks: int
    complete_tasks: int
    live_leases: int
    judgments_total: int
    active_labelers: int
    runs_by_status: dict[str, int]
    active_versions: dict[str, ModelVersion | None] = field(default_factory=dict)
    recent_runs: list[Run] = field(default_factory=list)


def _day(session: Session, column: Any) -> Any:
    if is_postgres(session):
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


def judgments_per_day(session: Session, days: int = 30) -> list[tuple[str, int]]:
    """Judgment counts for each of the last `days` UTC days, oldest first, zeros included."""
    today = utcnow().date()
    start = today - timedelta(days=days - 1)
    since = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    day = _day(session, Judgment.created_at)
    rows = session.execute(
        select(day, func.count()).where(Judgment.created_at >= since).group_by(day)
    ).all()
    counts = {str(d): int(n) for d, n in rows}
    out = []
    for i in range(days):
        d: date = start + timedelta(days=i)
        out.append((d.isoformat(), counts.get(d.isoformat(), 0)))
    return out


def dashboard(session: Session, days: int = 30) -> Dashboard:
    """Everything the /admin page shows, in a handful of queries."""
    now = utcnow()
    tasks = {
        s: n
        for s, n in session.execute(
            select(ComparisonTask.status, func.count()).group_by(ComparisonTask.status)
        )
    }
    leases = session.scalar(
        select(func.count()).where(
            Assignment.status == AssignmentStatus.active, Assignment.expires_at > now
        )
    )
    active = session.scalar(
        select(func.count(func.distinct(Judgment.user_id))).where(
            Judgment.user_id.is_not(None),
            Judgment.created_at >= now - timedelta(days=ACTIVE_LABELER_DAYS),
        )
    )
    runs = {s: n for s, n in session.execute(select(Run.status, func.count()).group_by(Run.status))}
    versions = {kind.value: registry.active_version(session, kind) for kind in ModelKind}
    recent = run_service.list_runs(session, limit=5)
    return Dashboard(
        per_day=judgments_per_day(session, days),
        open_tasks=int(tasks.get(TaskStatus.open, 0)),
        complete_tasks=int(tasks.get(TaskStatus.complete, 0)),
        live_leases=int(leases or 0),
        judgments_total=int(session.scalar(select(func.count()).select_from(Judgment)) or 0),
        active_labelers=int(active or 0),
        runs_by_status={s.value: int(runs.get(s, 0)) for s in RunStatus},
        active_versions=versions,
        recent_runs=recent,
    )


def versions_by_kind(session: Session) -> dict[str, list[ModelVersion]]:
    """Model versions grouped per kind, newest first (the registry's listing)."""
    out: dict[str, list[ModelVersion]] = {k.value: [] for k in ModelKind}
    for v in registry.list_versions(session):
        out[ModelKind(v.kind).value].append(v)
    return out
