from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Prompt(Base):
    """A prompt: chat messages; `is_chat` is false when it was imported as plain text."""

    __tablename__ = "prompts"

    id: Mapped[int] = mapped_column(primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    messages: Mapped[list[Any]]
    is_chat: Mapped[bool] = mapped_column(default=False)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    needs_candidates: Mapped[bool] = mapped_column(default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
