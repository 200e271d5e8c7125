from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Judgment(Base):
    """One ranking of a task's candidates, best group first; ties share a group.

    Made by a labeler (`user_id`) or imported from a named `source` (then `external_id`
    keeps re-imports idempotent).
    """

    __tablename__ = "judgments"
    __table_args__ = (
        UniqueConstraint("task_id", "user_id"),
        UniqueConstraint("task_id", "source", "external_id"),
        Index("ix_judgments_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(
        ForeignKey("comparison_tasks.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source: Mapped[str | None] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200))
    ranking: Mapped[list[Any]]
    choice: Mapped[str | None] = mapped_column(String(20))
    ratings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    rationale: Mapped[str | None]
    time_spent_ms: Mapped[int | None]
    shown_order: Mapped[list[Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # set by "exclude labeler": kept and exported raw, left out of training and trl exports
    excluded: Mapped[bool] = mapped_column(default=False, server_default=false())
