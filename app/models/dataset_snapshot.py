from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class DatasetSnapshot(Base):
    """A recorded export: what was asked for, what came out, and its checksum."""

    __tablename__ = "dataset_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    shape: Mapped[str] = mapped_column(String(20))
    format: Mapped[str] = mapped_column(String(20))
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    row_count: Mapped[int] = mapped_column(default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    card: Mapped[str | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the judgments the export held, as [first, last] id ranges (null on snapshots made before
    # lineage was recorded: app.quality.lineage infers those from filters and time)
    judgment_id_ranges: Mapped[list[Any] | None]
