"""Task assignment and judgment intake: the labeling hot path.

Rules: a labeler never gets a task they judged or skipped, nor one whose required judgments are
covered by judgments plus other labelers' live leases. Tasks closest to done come first, then the
oldest. On PostgreSQL the candidate row is taken with FOR UPDATE SKIP LOCKED so concurrent
labelers fan out; on SQLite every write transaction begins IMMEDIATE (see app.db), so the
select-then-lease runs under the single writer lock. Submits lock the task row and re-check its
count, so no task ever gets more judgments than required.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.labeling.ranking import normalize
from app.labeling.schemas import Candidate, JudgmentIn, TaskOut
from app.models import (
    Assignment,
    AssignmentStatus,
    ComparisonTask,
    Completion,
    Judgment,
    Prompt,
    TaskCandidate,
    TaskStatus,
    utcnow,
)

_rng = random.SystemRandom()
_PICK_ATTEMPTS = 8


class Conflict(Exception):
    """The request is well-formed but the task's state refuses it (HTTP 409)."""


class NotFound(Exception):
    pass


@dataclass
class SubmitResult:
    judgment: Judgment
    created: bool


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _live_leases(user_id: int, now: datetime):  # type: ignore[no-untyped-def]
    """Other labelers' unexpired leases on the outer query's task (correlated scalar)."""
    t, a = ComparisonTask, Assignment
    return (
        select(func.count())
        .where(
            a.task_id == t.id,
            a.status == AssignmentStatus.active,
            a.expires_at > now,
            a.user_id != user_id,
        )
        .correlate(t)
        .scalar_subquery()
    )


def _eligible(user_id: int, now: datetime, skip: list[int]):  # type: ignore[no-untyped-def]
    t, a = ComparisonTask, Assignment
    done_by_user = exists().where(
        a.task_id == t.id,
        a.user_id == user_id,
        a.status.in_([AssignmentStatus.submitted, AssignmentStatus.skipped]),
    )
    query = (
        select(t.id)
        .where(t.status == TaskStatus.open, ~done_by_user)
        .where(t.judgment_count + _live_leases(user_id, now) < t.required_judgments)
        .order_by(t.required_judgments - t.judgment_count, t.created_at, t.id)
        .limit(1)
    )
    return query.where(t.id.not_in(skip)) if skip else query


def _content(task_id: int):  # type: ignore[no-untyped-def]
    """One row per candidate with everything a TaskOut needs (one round trip)."""
    return (
        select(
            TaskCandidate.completion_id,
            Completion.text,
            Prompt.messages,
            Prompt.is_chat,
            ComparisonTask.required_judgments,
            ComparisonTask.tags,
        )
        .join(Completion, Completion.id == TaskCandidate.completion_id)
        .join(ComparisonTask, ComparisonTask.id == TaskCandidate.task_id)
        .join(Prompt, Prompt.id == ComparisonTask.prompt_id)
        .where(TaskCandidate.task_id == task_id)
        .order_by(TaskCandidate.position)
    )


async def next_task(session: AsyncSession, user_id: int, lease: timedelta) -> TaskOut | None:
    """Lease the next task for a labeler (or return the lease they already hold)."""
    now = utcnow()
    held = (
        await session.execute(
            select(Assignment.task_id, Assignment.shown_order, Assignment.expires_at)
            .join(ComparisonTask, ComparisonTask.id == Assignment.task_id)
            .where(
                Assignment.user_id == user_id,
                Assignment.status == AssignmentStatus.active,
                Assignment.expires_at > now,
                ComparisonTask.status == TaskStatus.open,
            )
            .order_by(Assignment.leased_at)
            .limit(1)
        )
    ).first()
    if held:
        rows = (await session.execute(_content(held[0]))).all()
        return _task_out(held[0], rows, held[1], held[2])

    pg = session.get_bind().dialect.name == "postgresql"
    passed_over: list[int] = []
    for _ in range(_PICK_ATTEMPTS):
        query = _eligible(user_id, now, passed_over)
        if pg:
            query = query.with_for_update(skip_locked=True, of=ComparisonTask)
        task_id = await session.scalar(query)
        if task_id is None:
            return None
        content = _content(task_id)
        if pg:
            # The pick's snapshot predates its lock: a lease committed in between is invisible to
            # it. Holding the row lock now, re-check with this statement's fresh snapshot.
            content = content.where(
                ComparisonTask.judgment_count + _live_leases(user_id, now)
                < ComparisonTask.required_judgments
            )
        rows = (await session.execute(content)).all()
        if rows:
            break
        passed_over.append(task_id)
    else:
        return None
    ids = [r[0] for r in rows]
    _rng.shuffle(ids)
    expires = now + lease
    insert = _insert(session)
    stmt = insert(Assignment).values(
        task_id=task_id,
        user_id=user_id,
        shown_order=ids,
        status=AssignmentStatus.active,
        leased_at=now,
        expires_at=expires,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["task_id", "user_id"],
        set_={
            "shown_order": ids,
            "status": AssignmentStatus.active.value,
            "leased_at": now,
            "expires_at": expires,
        },
    )
    await session.execute(stmt)
    return _task_out(task_id, rows, ids, expires)


def _task_out(
    task_id: int, rows: Sequence[Row[Any]], order: list[int], expires: datetime
) -> TaskOut:
    texts = {r[0]: r[1] for r in rows}
    _, _, messages, is_chat, required, tags = rows[0]
    return TaskOut(
        task_id=task_id,
        prompt=messages if is_chat else messages[0]["content"],
        candidates=[Candidate(id=i, text=texts[i]) for i in order],
        lease_expires_at=expires if expires.tzinfo else expires.replace(tzinfo=UTC),
        required_judgments=required,
        tags=tags or [],
    )


async def submit(
    session: AsyncSession,
    user_id: int,
    task_id: int,
    body: JudgmentIn,
    criteria: list[str],
    flags: list[str],
) -> SubmitResult:
    """Store a judgment exactly once; resubmits return the stored one."""
    a, j = Assignment, Judgment
    # task row (locked), the caller's assignment and any stored judgment, in one round trip
    state = (
        select(
            ComparisonTask.required_judgments,
            ComparisonTask.judgment_count,
            a.id,
            a.shown_order,
            a.status,
            j.id,
        )
        .select_from(ComparisonTask)
        .outerjoin(a, and_(a.task_id == ComparisonTask.id, a.user_id == user_id))
        .outerjoin(j, and_(j.task_id == ComparisonTask.id, j.user_id == user_id))
        .where(ComparisonTask.id == task_id)
    )
    if session.get_bind().dialect.name == "postgresql":
        state = state.with_for_update(of=ComparisonTask)
    row = (await session.execute(state)).first()
    if row is None:
        raise NotFound(f"task {task_id} does not exist")
    required, count, assignment_id, shown_order, status, existing_id = row
    if existing_id is not None:
        existing = await session.get(Judgment, existing_id)
        assert existing is not None
        return SubmitResult(existing, created=False)
    if assignment_id is None:
        raise Conflict(f"task {task_id} was never assigned to you; get one from /api/v1/tasks/next")
    if status == AssignmentStatus.skipped:
        raise Conflict(f"you skipped task {task_id}; it can no longer be judged by you")
    # the order shown is a permutation of the task's candidates (set when the lease was taken)
    ranking = normalize(body, list(shown_order), shown_order, criteria, flags)
    if count >= required:
        raise Conflict(
            f"task {task_id} already has its {required} required judgment(s) and your lease "
            "expired; your judgment was not stored"
        )
    judgment = Judgment(
        task_id=task_id,
        user_id=user_id,
        ranking=ranking,
        choice=body.choice,
        ratings=body.ratings,
        flags=body.flags,
        rationale=body.rationale,
        time_spent_ms=body.time_spent_ms,
        shown_order=shown_order,
    )
    session.add(judgment)
    await session.execute(
        update(ComparisonTask)
        .where(ComparisonTask.id == task_id)
        .values(
            judgment_count=ComparisonTask.judgment_count + 1,
            status=TaskStatus.complete.value if count + 1 >= required else TaskStatus.open.value,
        )
    )
    await session.execute(
        update(Assignment)
        .where(Assignment.id == assignment_id)
        .values(status=AssignmentStatus.submitted)
    )
    await session.flush()
    return SubmitResult(judgment, created=True)


async def skip(session: AsyncSession, user_id: int, task_id: int, reason: str) -> None:
    """Give a leased task back with a reason; the labeler will not be offered it again."""
    result = await session.execute(
        update(Assignment)
        .where(
            Assignment.task_id == task_id,
            Assignment.user_id == user_id,
            Assignment.status == AssignmentStatus.active,
        )
        .values(status=AssignmentStatus.skipped, skip_reason=reason or None)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(f"you hold no lease on task {task_id}")


async def counts(session: AsyncSession, user_id: int) -> tuple[int, int]:
    """(judged today UTC, judged in total) for one labeler."""
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    row = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(and_(Judgment.created_at >= today)),
            ).where(Judgment.user_id == user_id)
        )
    ).one()
    return int(row[1]), int(row[0])
