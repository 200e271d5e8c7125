"""Run an export: stream rows from a read snapshot, encode them, record a dataset snapshot."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.exports import shapes
from app.exports.card import render_card
from app.exports.query import (
    FilterError,
    TaskData,
    any_chat,
    count_judgments,
    iter_tasks,
    read_connection,
    resolve,
)
from app.exports.schemas import FORMATS, SHAPES, ExportFilters, PreviewOut
from app.exports.writers import Digest, encode
from app.models import DatasetSnapshot, User, utcnow
from app.preferences.agreement import AgreementAccumulator, Vote
from app.preferences.pairs import task_pairs

Progress = Callable[[int], None]

__all__ = ["Export", "FilterError", "preview", "start_snapshot", "finish_snapshot"]


@dataclass
class Stats:
    """Counts gathered while streaming (memory bounded by the number of labelers)."""

    judgments: int = 0
    imported: int = 0
    tasks: int = 0
    rows: int = 0
    coders: set[str] = field(default_factory=set)
    agreement: AgreementAccumulator = field(default_factory=AgreementAccumulator)

    def observe(self, tasks: Iterable[TaskData]) -> Iterator[TaskData]:
        for t in tasks:
            self.tasks += 1
            self.judgments += len(t.judgments)
            self.imported += sum(j.labeler is None for j in t.judgments)
            self.coders.update(j.coder for j in t.judgments)
            self.agreement.add_task(Vote(j.coder, j.ranking, j.choice) for j in t.judgments)
            yield t

    def count(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            self.rows += 1
            yield row

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "judgments": self.judgments,
            "imported": self.imported,
            "tasks": self.tasks,
            "labelers": len(self.coders),
            "agreement": self.agreement.report().as_dict(),
        }


def check(shape: str, fmt: str, filters: ExportFilters) -> None:
    """Raise FilterError for an unknown shape/format or a filter naming nothing."""
    if shape not in SHAPES:
        raise FilterError(f"unknown shape {shape!r}; use one of {', '.join(SHAPES)}")
    if fmt not in FORMATS:
        raise FilterError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if filters.since and filters.until and filters.since >= filters.until:
        raise FilterError("'since' must be before 'until'")
    with read_connection() as conn:
        resolve(conn, filters)


class Export:
    """One export: iterate `chunks()` once, then read `stats`, `digest` and `conversational`."""

    def __init__(self, filters: ExportFilters, shape: str, fmt: str) -> None:
        self.filters, self.shape, self.fmt = filters, shape, fmt
        self.stats = Stats()
        self.digest = Digest()
        self.conversational = False

    def total(self) -> int:
        """Judgments passing the SQL-side filters (for a progress bar)."""
        with read_connection() as conn:
            return count_judgments(conn, resolve(conn, self.filters))

    def _rows(self, tasks: Iterable[TaskData]) -> tuple[Iterable[dict[str, Any]], pa.Schema]:
        f = self.filters
        if self.shape == "trl":
            rows = shapes.trl_rows(tasks, self.conversational, f.min_agreement, f.margin)
            return rows, shapes.trl_schema(self.conversational, f.margin)
        if self.shape == "raw":
            return shapes.raw_rows(tasks, f.min_agreement), shapes.RAW_SCHEMA
        return shapes.rankings_rows(tasks, f.min_agreement), shapes.RANKINGS_SCHEMA

    def chunks(self, progress: Progress | None = None) -> Iterator[bytes]:
        with read_connection() as conn:
            r = resolve(conn, self.filters)
            if self.shape == "trl":
                self.conversational = any_chat(conn, r)
            tasks = self.stats.observe(iter_tasks(conn, r, progress))
            rows, schema = self._rows(tasks)
            yield from self.digest.tap(encode(self.stats.count(rows), self.fmt, schema))

    def recorded_filters(self) -> dict[str, Any]:
        return {
            **self.filters.recorded(),
            "conversational": self.conversational,
            "_stats": self.stats.as_dict(),
        }


def preview(filters: ExportFilters) -> PreviewOut:
    """Exact counts for the export form: one streaming pass, nothing written."""
    with read_connection() as conn:
        r = resolve(conn, filters)
        stats = Stats()
        trl = ties = raw = tasks_kept = 0
        for t in stats.observe(iter_tasks(conn, r)):
            pairs = task_pairs(t.task_id, t.judgments)
            keep = [p for p in pairs if p.agreement + 1e-9 >= filters.min_agreement]
            trl += sum(not p.is_tie for p in keep)
            ties += sum(p.is_tie for p in keep)
            if shapes.task_agreement(t.judgments) + 1e-9 >= filters.min_agreement:
                tasks_kept += 1
                raw += len(t.judgments)
    return PreviewOut(
        judgments=stats.judgments,
        tasks=stats.tasks,
        labelers=len(stats.coders),
        imported=stats.imported,
        pairs=trl,
        tied_pairs=ties,
        rows={"trl": trl, "raw": raw, "rankings": tasks_kept},
    )


def start_snapshot(
    session: Session, shape: str, fmt: str, filters: ExportFilters, user_id: int | None
) -> DatasetSnapshot:
    """Record that an export began (finished by finish_snapshot)."""
    snap = DatasetSnapshot(
        shape=shape, format=fmt, filters=filters.recorded(), created_by_id=user_id
    )
    session.add(snap)
    session.flush()
    return snap


def finish_snapshot(session: Session, snapshot_id: int, export: Export, filename: str) -> str:
    """Store row count, checksum, stats and the dataset card; returns the card."""
    snap = session.get_one(DatasetSnapshot, snapshot_id)
    creator = (
        session.scalar(select(User.name).where(User.id == snap.created_by_id))
        if snap.created_by_id
        else None
    )
    filters = export.recorded_filters()
    snap.filters = filters
    snap.row_count = export.stats.rows
    snap.sha256 = export.digest.hexdigest
    snap.card = render_card(
        snapshot_id=snap.id,
        shape=snap.shape,
        fmt=snap.format,
        filename=filename,
        filters={k: v for k, v in filters.items() if k != "_stats"},
        stats=filters["_stats"],
        sha256=snap.sha256,
        size=export.digest.size,
        created_by=creator,
        created_at=snap.created_at or utcnow(),
    )
    session.flush()
    from app.webhooks.events import emit

    data = {
        "snapshot_id": snap.id,
        "shape": snap.shape,
        "format": snap.format,
        "filename": filename,
        "rows": snap.row_count,
        "sha256": snap.sha256,
        "filters": {k: v for k, v in filters.items() if k != "_stats"},
        "created_by": creator,
    }
    emit(session, "export.created", data)
    return snap.card


def export_to_file(
    filters: ExportFilters,
    shape: str,
    fmt: str,
    path: Path,
    user_id: int | None = None,
    progress: Progress | None = None,
    actor: Any = None,
) -> tuple[int, Export]:
    """Write the export to `path` (atomically) and the card to `path`.card.md; returns the
    snapshot id and the finished export. Opens its own sessions (CLI and worker use); the
    export is audited as `actor` (None: the command line's operating-system account)."""
    from app.audit import record
    from app.db import session_scope

    check(shape, fmt, filters)
    with session_scope() as session:
        snap = start_snapshot(session, shape, fmt, filters, user_id)
        details = {"shape": shape, "format": fmt, "filters": snap.filters, "file": str(path)}
        if user_id is not None:
            details["recorded_as_user_id"] = user_id
        record(session, actor, "export.preferences", f"snapshot {snap.id}", details)
        snapshot_id = snap.id
    export = Export(filters, shape, fmt)
    tmp = path.with_name(f".{path.name}.part")
    with tmp.open("wb") as fh:
        for chunk in export.chunks(progress):
            fh.write(chunk)
    os.replace(tmp, path)
    with session_scope() as session:
        card = finish_snapshot(session, snapshot_id, export, path.name)
    path.with_name(path.name + ".card.md").write_text(card + "\n", encoding="utf-8")
    return snapshot_id, export


def stream_and_finish(snapshot_id: int, export: Export, filename: str) -> Iterator[bytes]:
    """Yield the export's bytes; once complete, record checksum and card in the snapshot."""
    from app.db import session_scope

    yield from export.chunks()
    with session_scope() as session:
        finish_snapshot(session, snapshot_id, export, filename)


def agreement_report(filters: ExportFilters) -> dict[str, Any]:
    """Agreement over the selected judgments (one streaming pass)."""
    with read_connection() as conn:
        stats = Stats()
        for _ in stats.observe(iter_tasks(conn, resolve(conn, filters))):
            pass
    report = stats.agreement.report().as_dict()
    report["judgments"] = stats.judgments
    return report
