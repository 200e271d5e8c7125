"""Run API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.models import RunKind, RunStatus


class RunCreate(BaseModel):
    kind: RunKind
    params: dict[str, Any] = Field(default_factory=dict, description="job parameters")


class RunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: RunKind
    status: RunStatus
    params: dict[str, Any]
    progress_step: int
    progress_total: int
    metrics: dict[str, Any]
    log_tail: str
    error: str | None
    attempts: int
    cancel_requested: bool
    worker_id: str | None
    heartbeat_at: datetime | None
    created_by_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunList(BaseModel):
    runs: list[RunRead]
