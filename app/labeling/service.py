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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.labeling.ranking import InvalidJudgment, normalize
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


def _eligible(user_id: int, now: datetime):  # type: ignore[no-untyped-def]
    t, a = ComparisonTask, Assignment
    done_by_user = exists().where(
        a.task_id == t.id,
        a.user_id == user_id,
        a.status.in_([AssignmentStatus.submitted, AssignmentStatus.skipped]),
    )
    live_leases = (
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
    return (
        select(t.id)
        .where(t.status == TaskStatus.open, ~done_by_user)
        .where(t.judgment_count + live_leases < t.required_judgments)
        .order_by(t.required_judgments - t.judgment_count, t.created_at, t.id)
        .limit(1)
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
        return await _task_out(session, held[0], held[1], held[2])

    query = _eligible(user_id, now)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=ComparisonTask)
    task_id = await session.scalar(query)
    if task_id is None:
        return None
    ids = list(
        (
            await session.scalars(
                select(TaskCandidate.completion_id).where(TaskCandidate.task_id == task_id)
            )
        ).all()
    )
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
    return await _task_out(session, task_id, ids, expires)


async def _task_out(
    session: AsyncSession, task_id: int, order: list[int], expires: datetime
) -> TaskOut:
    rows = (
        await session.execute(
            select(Completion.id, Completion.text).where(Completion.id.in_(order))
        )
    ).all()
    texts = dict(rows)
    task_row = (
        await session.execute(
            select(
                Prompt.messages,
                Prompt.is_chat,
                ComparisonTask.required_judgments,
                ComparisonTask.tags,
            )
            .join(ComparisonTask, ComparisonTask.prompt_id == Prompt.id)
            .where(ComparisonTask.id == task_id)
        )
    ).one()
    messages, is_chat, required, tags = task_row
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
    lock = select(ComparisonTask.required_judgments, ComparisonTask.judgment_count).where(
        ComparisonTask.id == task_id
    )
    if session.get_bind().dialect.name == "postgresql":
        lock = lock.with_for_update()
    task = (await session.execute(lock)).first()
    if task is None:
        raise NotFound(f"task {task_id} does not exist")
    existing = await session.scalar(
        select(Judgment).where(Judgment.task_id == task_id, Judgment.user_id == user_id)
    )
    if existing is not None:
        return SubmitResult(existing, created=False)
    assignment = (
        await session.execute(
            select(Assignment.id, Assignment.shown_order, Assignment.status).where(
                Assignment.task_id == task_id, Assignment.user_id == user_id
            )
        )
    ).first()
    if assignment is None:
        raise Conflict(f"task {task_id} was never assigned to you; get one from /api/v1/tasks/next")
    if assignment.status == AssignmentStatus.skipped:
        raise Conflict(f"you skipped task {task_id}; it can no longer be judged by you")
    candidates = list(
        (
            await session.scalars(
                select(TaskCandidate.completion_id)
                .where(TaskCandidate.task_id == task_id)
                .order_by(TaskCandidate.position)
            )
        ).all()
    )
    try:
        ranking = normalize(body, candidates, assignment.shown_order, criteria, flags)
    except InvalidJudgment:
        raise
    required, count = task
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
        shown_order=assignment.shown_order,
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
        .where(Assignment.id == assignment.id)
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
