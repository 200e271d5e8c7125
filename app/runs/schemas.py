"""Run API shapes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.models import RunKind, RunStatus


class RunCreate(BaseModel):
    kind: RunKind
    params: dict[str, Any] = Field(default_factory=dict, description="job parameters")

    @field_validator("params")
    @classmethod
    def _no_nul(cls, v: dict[str, Any]) -> dict[str, Any]:
        """NUL characters cannot be stored in JSON columns on PostgreSQL."""
        if "\\u0000" in json.dumps(v):
            raise ValueError("params must not contain NUL characters")
        return v


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
