from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor_id: int | None = Field(description="the account; null for the command line")
    actor: str = Field(description="account name, or cli:<os user> for the command line")
    action: str
    target: str
    details: dict[str, Any]
    ip: str | None


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    next_before_id: int | None = Field(description="pass as before_id for older events")
