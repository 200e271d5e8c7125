from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, literal_column
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class ModelKind(enum.StrEnum):
    policy = "policy"
    reward = "reward"


class ModelStatus(enum.StrEnum):
    training = "training"
    ready = "ready"
    active = "active"
    retired = "retired"
    failed = "failed"


class ModelVersion(Base):
    """A model in the store at `path`; never overwritten. One active version per kind."""

    __tablename__ = "model_versions"
    __table_args__ = (
        Index(
            "uq_model_versions_one_active",
            "kind",
            unique=True,
            sqlite_where=literal_column("status = 'active'"),
            postgresql_where=literal_column("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[ModelKind] = mapped_column(Enum(ModelKind, native_enum=False, length=20))
    status: Mapped[ModelStatus] = mapped_column(Enum(ModelStatus, native_enum=False, length=20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    base_model: Mapped[str | None] = mapped_column(String(500))
    path: Mapped[str] = mapped_column(String(1000))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None]
