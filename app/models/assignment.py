from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class AssignmentStatus(enum.StrEnum):
    active = "active"
    submitted = "submitted"
    skipped = "skipped"


class Assignment(Base):
    """A labeler's lease on a task, with the candidate order shown to them."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("task_id", "user_id"),
        Index("ix_assignments_live", "task_id", "status", "expires_at"),
        Index("ix_assignments_user_status", "user_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("comparison_tasks.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    shown_order: Mapped[list[Any]]
    status: Mapped[AssignmentStatus] = mapped_column(
        Enum(AssignmentStatus, native_enum=False, length=20), default=AssignmentStatus.active
    )
    skip_reason: Mapped[str | None] = mapped_column(String(500))
    leased_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
