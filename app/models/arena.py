"""Arena: battle campaigns between policy versions and the battles (two-candidate tasks) they
made or that were imported. A battle's outcome is read from the judgments of its task."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class CampaignStatus(enum.StrEnum):
    active = "active"
    stopped = "stopped"
    decided = "decided"


class ArenaCampaign(Base):
    """Battles between `version_ids` (policy versions); a `gate` campaign decides whether
    `candidate_id` replaces `baseline_id` (the active policy when it started)."""

    __tablename__ = "arena_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[CampaignStatus] = mapped_column(
        Enum(CampaignStatus, native_enum=False, length=20), default=CampaignStatus.active,
        index=True,
    )  # fmt: skip
    version_ids: Mapped[list[Any]] = mapped_column(default=list)
    purpose: Mapped[str] = mapped_column(String(20), default="manual")
    candidate_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    baseline_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    target_battles: Mapped[int] = mapped_column(default=0)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    decision: Mapped[dict[str, Any] | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class Battle(Base):
    """Model A's answer against model B's on one prompt, as a K=2 task. `model_a`/`model_b` are
    version names (or the names an imported log used); the version ids are set for our own."""

    __tablename__ = "battles"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("arena_campaigns.id", ondelete="SET NULL"), index=True
    )
    task_id: Mapped[int] = mapped_column(
        ForeignKey("comparison_tasks.id", ondelete="CASCADE"), unique=True
    )
    model_a: Mapped[str] = mapped_column(String(200))
    model_b: Mapped[str] = mapped_column(String(200))
    version_a_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    version_b_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    completion_a_id: Mapped[int] = mapped_column(ForeignKey("completions.id", ondelete="CASCADE"))
    completion_b_id: Mapped[int] = mapped_column(ForeignKey("completions.id", ondelete="CASCADE"))
    source: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
