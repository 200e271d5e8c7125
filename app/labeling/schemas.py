"""Wire formats of the labeling API (public interface: keep field names)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.ops.errors import ErrorOut, PlainText

Message = dict[str, str]


class Candidate(BaseModel):
    id: int
    text: str


class TaskOut(BaseModel):
    task_id: int
    prompt: str | list[Message]
    candidates: list[Candidate]
    lease_expires_at: datetime
    required_judgments: int
    tags: list[Any] = []


class JudgmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ranking: list[list[int]] | None = Field(
        None, description="candidate ids grouped best first; ids in one group are tied"
    )
    choice: Literal["a", "b", "tie", "both_bad"] | None = Field(
        None, description="K=2 shorthand; a and b refer to the order shown"
    )
    ratings: dict[str, int] = {}
    flags: list[str] = []
    rationale: PlainText | None = Field(None, max_length=20_000)
    time_spent_ms: int | None = Field(None, ge=0, le=7 * 24 * 3600 * 1000)


class JudgmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    task_id: int
    ranking: list[list[int]]
    choice: str | None
    ratings: dict[str, int]
    flags: list[str]
    rationale: str | None
    time_spent_ms: int | None
    shown_order: list[int] | None
    created_at: datetime


class SubmitOut(JudgmentOut):
    next: TaskOut | None = Field(
        None,
        description="only with ?next=1: the next task leased to you in the same transaction "
        "(null: nothing to do)",
    )


class ConflictOut(ErrorOut):
    """ErrorOut (the one 4xx shape) plus the next task."""

    detail: str
    next: TaskOut | None = Field(
        None, description="only with ?next=1: the next task, so the labeler can move on"
    )


class SkipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: PlainText = Field("", max_length=500)


class MeOut(BaseModel):
    id: int
    name: str
    role: str
    judged_today: int
    judged_total: int
    criteria: list[str]
    flags: list[str]
