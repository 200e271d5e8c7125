from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, literal_column
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class TaskStatus(enum.StrEnum):
    open = "open"
    complete = "complete"


class ComparisonTask(Base):
    """A prompt with K >= 2 candidates that needs `required_judgments` rankings."""

    __tablename__ = "comparison_tasks"
    __table_args__ = (
        # walk open tasks in assignment order: closest to done first, then most uncertain
        # (highest priority), then oldest
        Index(
            "ix_comparison_tasks_queue",
            literal_column("(required_judgments - judgment_count)"),
            literal_column("priority DESC"),
            "created_at",
            "id",
            sqlite_where=literal_column("status = 'open'"),
            postgresql_where=literal_column("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"), index=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    required_judgments: Mapped[int] = mapped_column(default=1)
    judgment_count: Mapped[int] = mapped_column(default=0)
    status: Mapped[TaskStatus] = mapped_column(
        Enum(TaskStatus, native_enum=False, length=20), default=TaskStatus.open
    )
    tags: Mapped[list[Any]] = mapped_column(default=list)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    # why these candidates were chosen: random | uncertainty | explore | battle | import, and the
    # reward gap of the kept candidates (uncertainty/explore); priority orders the queue within
    # equal remaining judgments (higher first: the model's uncertainty, 0 when unknown)
    selection_method: Mapped[str | None] = mapped_column(String(20))
    selection_score: Mapped[float | None]
    priority: Mapped[float] = mapped_column(default=0.0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskCandidate(Base):
    """Candidate `position` (canonical order) of a task."""

    __tablename__ = "task_candidates"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("comparison_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    completion_id: Mapped[int] = mapped_column(
        ForeignKey("completions.id", ondelete="CASCADE"), index=True
    )
