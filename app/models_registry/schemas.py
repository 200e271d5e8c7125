"""Model version API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from app.models import ModelKind, ModelStatus


class ModelVersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version: str
    kind: ModelKind
    status: ModelStatus
    parent_id: int | None
    base_model: str | None
    path: str | None = None
    metrics: dict[str, Any]
    run_id: int | None
    created_at: datetime
    activated_at: datetime | None


class ModelVersionList(BaseModel):
    versions: list[ModelVersionRead]
