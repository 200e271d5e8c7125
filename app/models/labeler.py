"""Per-labeler quality state (pause, cleared flag) and recorded exclusions (app.quality)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, false
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class LabelerState(Base):
    """What an admin decided about a labeler; no row means "not paused, flag never cleared"."""

    __tablename__ = "labeler_states"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # a paused labeler is offered no new tasks (a rule of the labeling hot path)
    paused: Mapped[bool] = mapped_column(default=False, server_default=false())
    # flags raised by judgments older than this are cleared
    flag_cleared_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LabelerExclusion(Base):
    """One "exclude this labeler's judgments" action, with the runs it queued and its undo."""

    __tablename__ = "labeler_exclusions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    judgment_count: Mapped[int] = mapped_column(default=0)
    reward_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    undone_at: Mapped[datetime | None]
