"""Write judgments straight into the database for export tests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.db import session_scope
from app.models import ComparisonTask, Judgment, TaskCandidate, TaskStatus, User


def candidates(task_id: int) -> list[int]:
    """The task's completion ids in canonical order."""
    with session_scope() as session:
        return list(
            session.scalars(
                select(TaskCandidate.completion_id)
                .where(TaskCandidate.task_id == task_id)
                .order_by(TaskCandidate.position)
            )
        )


def user_id(name: str) -> int:
    with session_scope() as session:
        return session.scalar(select(User.id).where(User.name == name))  # type: ignore[return-value]


def judge(
    task_id: int,
    user: str,
    ranking: list[list[int]],
    choice: str | None = None,
    flags: list[str] | None = None,
    created_at: datetime | None = None,
    rationale: str | None = None,
) -> int:
    """Store a labeler's judgment (as the labeling service would) and bump the task count."""
    uid = user_id(user)
    with session_scope() as session:
        j = Judgment(
            task_id=task_id,
            user_id=uid,
            ranking=ranking,
            choice=choice,
            ratings={"helpfulness": 4},
            flags=flags or [],
            rationale=rationale,
            time_spent_ms=1234,
            shown_order=[c for g in ranking for c in g],
        )
        if created_at:
            j.created_at = created_at
        session.add(j)
        task = session.get_one(ComparisonTask, task_id)
        task.judgment_count += 1
        if task.judgment_count >= task.required_judgments:
            task.status = TaskStatus.complete
        session.flush()
        return j.id
