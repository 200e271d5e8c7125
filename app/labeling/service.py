"""Labeling outside the hot path: skip a leased task, a labeler's counters.

Leasing and judging (the hot path) are in app.labeling.hot, on the statements of
app.labeling.sql built from the rules in app.labeling.rules.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Assignment, AssignmentStatus, Judgment, utcnow


class Conflict(Exception):
    """The request is well-formed but the task's state refuses it (HTTP 409)."""


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
    if cast("CursorResult[Any]", result).rowcount == 0:
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
