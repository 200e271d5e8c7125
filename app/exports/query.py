"""Stream filtered judgments grouped by task, in constant memory, from a read-only snapshot.

Two server-side cursors (judgments, and candidates with their prompt) are both ordered by task id
and merge-joined here, so only one task is ever held in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from itertools import groupby
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    create_engine,
    event,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.orm import aliased

from app.config import get_settings
from app.db import is_postgres, sync_url
from app.exports.schemas import ExportFilters
from app.models import (
    ComparisonTask,
    Completion,
    Judgment,
    ModelVersion,
    Prompt,
    TaskCandidate,
    User,
)
from app.preferences.pseudonym import labeler_pseudonym

BATCH = 2000


class FilterError(ValueError):
    """A filter names something that does not exist (HTTP 422)."""


@dataclass
class Candidate:
    id: int
    text: str
    source: str | None
    model_version: str | None


@dataclass
class JudgmentRow:
    id: int
    task_id: int
    labeler: str | None
    source: str | None
    external_id: str | None
    ranking: list[list[int]]
    choice: str | None
    ratings: dict[str, Any]
    flags: list[str]
    rationale: str | None
    time_spent_ms: int | None
    shown_order: list[int] | None
    created_at: datetime

    @property
    def coder(self) -> str:
        return self.labeler or f"source:{self.source}"

    @property
    def has_tie(self) -> bool:
        if self.choice == "both_bad":
            return False
        return self.choice == "tie" or any(len(g) > 1 for g in self.ranking)


@dataclass
class TaskData:
    task_id: int
    messages: list[dict[str, str]]
    is_chat: bool
    tags: list[str]
    candidates: list[Candidate] = field(default_factory=list)
    judgments: list[JudgmentRow] = field(default_factory=list)
    # why the candidates were chosen (random | uncertainty | explore | battle | import) + reward gap
    selection_method: str | None = None
    selection_score: float | None = None


_decode = json.JSONDecoder().decode


def _loads(data: bytes | memoryview | str) -> Any:
    # psycopg hands json.loads bytes, which makes it sniff the encoding on every value
    return _decode(data if isinstance(data, str) else bytes(data).decode())


@lru_cache
def _read_engine(url: str) -> Engine:
    """SQLite: deferred transactions (a WAL snapshot that never takes the writer lock)."""
    if not url.startswith("sqlite"):
        engine = create_engine(url, pool_pre_ping=True, pool_size=2)

        @event.listens_for(engine, "connect")
        def _pg_connect(dbapi_conn: Any, _record: Any) -> None:
            from psycopg.types.json import set_json_loads

            set_json_loads(_loads, dbapi_conn)

        return engine
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA busy_timeout=30000")

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


@contextmanager
def read_connection() -> Iterator[Connection]:
    """A connection holding one consistent read-only snapshot for the whole export."""
    engine = _read_engine(sync_url(get_settings().database_url))
    opts: dict[str, Any] = {}
    if is_postgres(engine):
        opts = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with engine.connect().execution_options(**opts) as conn:
        with conn.begin():
            yield conn


@dataclass
class Resolved:
    """Filters with names turned into ids."""

    filters: ExportFilters
    user_ids: list[int] | None
    version_ids: list[int] | None
    version_names: dict[int, str]


def resolve(conn: Connection, f: ExportFilters) -> Resolved:
    """Map labeler names/pseudonyms and model version names/ids; unknown ones are errors."""
    versions = {
        vid: name for vid, name in conn.execute(select(ModelVersion.id, ModelVersion.version))
    }
    user_ids = None
    if f.labelers:
        known: dict[str, int] = {}
        for uid, name in conn.execute(select(User.id, User.name)):
            known[name] = uid
            known[labeler_pseudonym(uid)] = uid
        missing = [x for x in f.labelers if x not in known]
        if missing:
            raise FilterError(f"unknown labeler(s): {', '.join(missing)}")
        user_ids = sorted({known[x] for x in f.labelers})
    version_ids = None
    if f.model_versions:
        by_name = {name: vid for vid, name in versions.items()}
        version_ids = []
        for v in f.model_versions:
            # an id is ASCII digits: "²".isdigit() is True, and int("²") raises
            as_id = int(v) if v.isascii() and v.isdigit() else None
            vid = by_name.get(v, as_id if as_id in versions else None)
            if vid is None:
                raise FilterError(f"unknown model version {v!r}")
            version_ids.append(vid)
    return Resolved(f, user_ids, version_ids, versions)


def _conditions(conn: Connection, r: Resolved) -> list[Any]:
    f, j = r.filters, Judgment
    pg = is_postgres(conn)
    cond: list[Any] = []
    if f.since:
        cond.append(j.created_at >= f.since)
    if f.until:
        cond.append(j.created_at < f.until)
    if r.user_ids is not None:
        cond.append(j.user_id.in_(r.user_ids))
    if not f.include_both_bad:
        cond.append(or_(j.choice.is_(None), j.choice != "both_bad"))
    if f.exclude_flagged:
        length = func.jsonb_array_length if pg else func.json_array_length
        cond.append(or_(j.flags.is_(None), length(j.flags) == 0))
    # aliased and correlated to judgments only: these subqueries also sit inside queries that
    # join the same tables (auto-correlation would otherwise empty their FROM)
    tc, comp, tagged = aliased(TaskCandidate), aliased(Completion), aliased(ComparisonTask)
    cand = (
        select(tc.task_id)
        .join(comp, comp.id == tc.completion_id)
        .where(tc.task_id == j.task_id)
        .correlate(Judgment)
    )
    if f.sources:
        cond.append(or_(j.source.in_(f.sources), exists(cand.where(comp.source.in_(f.sources)))))
    if r.version_ids is not None:
        cond.append(exists(cand.where(comp.model_version_id.in_(r.version_ids))))
    if f.tags:
        tags = select(tagged.id).where(tagged.id == j.task_id).correlate(Judgment)
        if pg:
            tags = tags.where(func.jsonb_exists_any(tagged.tags, array(f.tags)))
        else:
            each = func.json_each(tagged.tags).table_valued("value")
            tags = tags.where(exists(select(each.c.value).where(each.c.value.in_(f.tags))))
        cond.append(exists(tags))
    return cond


def judgment_query(conn: Connection, r: Resolved) -> Select[Any]:
    j = Judgment
    return (
        select(
            j.id, j.task_id, j.user_id, j.source, j.external_id, j.ranking, j.choice, j.ratings,
            j.flags, j.rationale, j.time_spent_ms, j.shown_order, j.created_at,
        )
        .where(*_conditions(conn, r))
        .order_by(j.task_id, j.id)
    )  # fmt: skip


def count_judgments(conn: Connection, r: Resolved) -> int:
    """How many judgments pass the SQL-side filters (ties and agreement are applied later)."""
    return conn.scalar(select(func.count()).select_from(Judgment).where(*_conditions(conn, r))) or 0


def any_chat(conn: Connection, r: Resolved) -> bool:
    """Whether any selected task has a chat-shaped prompt (then trl rows are conversational)."""
    q = (
        select(Judgment.id)
        .join(ComparisonTask, ComparisonTask.id == Judgment.task_id)
        .join(Prompt, Prompt.id == ComparisonTask.prompt_id)
        .where(Prompt.is_chat, *_conditions(conn, r))
        .limit(1)
    )
    return conn.scalar(q) is not None


def _candidate_query(conn: Connection, r: Resolved) -> Select[Any]:
    task_ids = select(Judgment.task_id).where(*_conditions(conn, r))
    return (
        select(
            TaskCandidate.task_id, Completion.id, Completion.text, Completion.source,
            Completion.model_version_id, Prompt.messages, Prompt.is_chat, ComparisonTask.tags,
            ComparisonTask.selection_method, ComparisonTask.selection_score,
        )
        .join(Completion, Completion.id == TaskCandidate.completion_id)
        .join(ComparisonTask, ComparisonTask.id == TaskCandidate.task_id)
        .join(Prompt, Prompt.id == ComparisonTask.prompt_id)
        .where(TaskCandidate.task_id.in_(task_ids))
        .order_by(TaskCandidate.task_id, TaskCandidate.position)
    )  # fmt: skip


def iter_tasks(conn: Connection, r: Resolved, on_judgments: Any = None) -> Iterator[TaskData]:
    """Every selected task with its candidates and kept judgments, in task id order."""
    f = r.filters
    pseudo: dict[int, str] = {}
    jres = conn.execute(judgment_query(conn, r).execution_options(yield_per=BATCH))
    cres = conn.execute(_candidate_query(conn, r).execution_options(yield_per=BATCH))
    cgroups = groupby(cres, key=lambda row: row[0])
    current: tuple[int, Any] | None = None
    for task_id, jrows in groupby(jres, key=lambda row: row[1]):
        judgments = []
        seen = 0
        for row in jrows:
            seen += 1
            uid = row[2]
            if uid is not None and uid not in pseudo:
                pseudo[uid] = labeler_pseudonym(uid)
            jr = JudgmentRow(
                row[0], row[1], pseudo.get(uid) if uid is not None else None, row[3], row[4],
                row[5] or [], row[6], row[7] or {}, row[8] or [], row[9], row[10], row[11], row[12],
            )  # fmt: skip
            if f.include_ties or not jr.has_tie:
                judgments.append(jr)
        if on_judgments is not None:
            on_judgments(seen)
        while current is None or current[0] < task_id:
            current = next(cgroups, None)
            if current is None:
                return
        if current[0] != task_id or not judgments:
            continue
        cands = list(current[1])
        first = cands[0]
        yield TaskData(
            task_id=task_id,
            messages=first[5],
            is_chat=bool(first[6]),
            tags=list(first[7] or []),
            selection_method=first[8],
            selection_score=first[9],
            candidates=[
                Candidate(c[1], c[2], c[3], r.version_names.get(c[4]) if c[4] else None)
                for c in cands
            ],
            judgments=judgments,
        )
