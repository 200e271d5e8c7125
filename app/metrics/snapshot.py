"""Database-derived metrics, read once per scrape (never on the labeling path).

`read(session)` runs a handful of aggregate queries; `SnapshotCollector` turns the result into
metric families for one scrape's registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString
from sqlalchemy import and_, case, distinct, exists, func, or_, select, union
from sqlalchemy.orm import Session

from app.models import (
    Assignment,
    AssignmentStatus,
    ComparisonTask,
    Judgment,
    ModelStatus,
    ModelVersion,
    Run,
    RunKind,
    RunStatus,
    TaskStatus,
    WorkerHeartbeat,
    utcnow,
)

ACTIVE_WINDOW = timedelta(minutes=15)
RUN_BUCKETS = (10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 3 * 3600.0, 12 * 3600.0)
WORKER_WINDOW = timedelta(hours=24)  # workers silent for longer are no longer reported


@dataclass
class Snapshot:
    judgments: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    active_labelers: int = 0
    runs: dict[tuple[str, str], int] = field(default_factory=dict)
    run_durations: dict[str, list[float]] = field(default_factory=dict)
    active_models: list[tuple[str, str, str]] = field(default_factory=list)
    heartbeats: dict[str, float] = field(default_factory=dict)


def read(session: Session, now: datetime | None = None) -> Snapshot:
    """Aggregate the database state the dashboards show (a few COUNT queries)."""
    now = now or utcnow()
    snap = Snapshot()
    kind = case((Judgment.user_id.is_(None), "imported"), else_="labeler")
    for k, n in session.execute(select(kind, func.count()).group_by(kind)):
        snap.judgments[k] = n
    snap.judgments = {k: snap.judgments.get(k, 0) for k in ("labeler", "imported")}

    live = exists().where(
        Assignment.task_id == ComparisonTask.id,
        Assignment.status == AssignmentStatus.active,
        Assignment.expires_at > now,
    )
    state = case(
        (ComparisonTask.status == TaskStatus.complete, "complete"),
        (live, "leased"),
        else_="open",
    )
    counts = dict(session.execute(select(state, func.count()).group_by(state)).all())
    snap.tasks = {s: counts.get(s, 0) for s in ("open", "leased", "complete")}

    since = now - ACTIVE_WINDOW
    who = union(
        select(Judgment.user_id).where(Judgment.user_id.is_not(None), Judgment.created_at >= since),
        select(Assignment.user_id).where(
            or_(
                Assignment.leased_at >= since,
                and_(Assignment.status == AssignmentStatus.active, Assignment.expires_at > now),
            )
        ),
    ).subquery()
    snap.active_labelers = session.scalar(select(func.count(distinct(who.c[0])))) or 0

    for k, s, n in session.execute(
        select(Run.kind, Run.status, func.count()).group_by(Run.kind, Run.status)
    ):
        snap.runs[(str(k), str(s))] = n
    finished = select(Run.kind, Run.started_at, Run.finished_at).where(
        Run.status.in_([RunStatus.succeeded, RunStatus.failed]),
        Run.started_at.is_not(None),
        Run.finished_at.is_not(None),
    )
    for k, started, ended in session.execute(finished):
        snap.run_durations.setdefault(str(k), []).append((ended - started).total_seconds())

    for k, version, base in session.execute(
        select(ModelVersion.kind, ModelVersion.version, ModelVersion.base_model).where(
            ModelVersion.status == ModelStatus.active
        )
    ):
        snap.active_models.append((str(k), version, base or ""))

    for worker, beat in session.execute(
        select(WorkerHeartbeat.worker_id, WorkerHeartbeat.heartbeat_at).where(
            WorkerHeartbeat.heartbeat_at >= now - WORKER_WINDOW
        )
    ):
        snap.heartbeats[worker] = max(0.0, (now - beat).total_seconds())
    return snap


class SnapshotCollector:
    """Metric families of one Snapshot (registered on a per-scrape registry)."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        s = self.snap
        judgments = CounterMetricFamily(
            "prefloop_judgments", "Judgments stored, by kind (labeler or imported)", labels=["kind"]
        )
        for k, n in s.judgments.items():
            judgments.add_metric([k], n)
        yield judgments

        tasks = GaugeMetricFamily(
            "prefloop_tasks",
            "Comparison tasks: open (no live lease), leased (open, with a live lease), complete",
            labels=["state"],
        )
        for k, n in s.tasks.items():
            tasks.add_metric([k], n)
        yield tasks

        yield GaugeMetricFamily(
            "prefloop_active_labelers",
            "Labelers who leased or judged a task in the last 15 minutes",
            value=s.active_labelers,
        )

        runs = GaugeMetricFamily(
            "prefloop_runs", "Runs by kind and status", labels=["kind", "status"]
        )
        for kind in RunKind:
            for status in RunStatus:
                key = (kind.value, status.value)
                runs.add_metric(list(key), s.runs.get(key, 0))
        yield runs

        durations = HistogramMetricFamily(
            "prefloop_run_duration_seconds",
            "Wall time of finished (succeeded or failed) runs, by kind",
            labels=["kind"],
        )
        for kind in RunKind:
            values = s.run_durations.get(kind.value, [])
            buckets = [(floatToGoString(b), sum(1 for v in values if v <= b)) for b in RUN_BUCKETS]
            buckets.append(("+Inf", len(values)))
            durations.add_metric([kind.value], buckets, sum_value=sum(values))
        yield durations

        models = InfoMetricFamily(
            "prefloop_active_model",
            "The active model version of each kind",
            labels=["kind"],
        )
        for kind, version, base in s.active_models:
            models.add_metric([kind], {"version": version, "base_model": base})
        yield models

        beats = GaugeMetricFamily(
            "prefloop_worker_heartbeat_age_seconds",
            "Seconds since each worker's last heartbeat (workers seen in the last 24 h)",
            labels=["worker"],
        )
        for worker, age in sorted(s.heartbeats.items()):
            beats.add_metric([worker], age)
        yield beats
