"""Arena API shapes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.ops.errors import PlainText

VersionRef = int | PlainText


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    versions: list[VersionRef] | None = Field(
        None,
        max_length=8,
        description="2-8 policy versions (ids or names); omitted: the active policy and the "
        "newest ready version",
    )
    candidate: VersionRef | None = Field(
        None, description="instead of versions: a gate campaign, this version vs the active one"
    )
    name: PlainText = Field("", max_length=200)
    target_battles: int = Field(0, ge=0, le=100_000, description="stop after this many; 0: no cap")


class CampaignOut(BaseModel):
    id: int
    name: str
    status: str
    purpose: str
    versions: list[str]
    candidate: str | None
    baseline: str | None
    target_battles: int
    battles: int
    open_battles: int
    judged: int
    decision: dict[str, Any] | None
    run_id: int | None
    created_at: str
    finished_at: str | None


class CampaignList(BaseModel):
    campaigns: list[CampaignOut]


class RatingOut(BaseModel):
    model: str
    rating: float
    lower: float
    upper: float
    battles: int


class PairOut(BaseModel):
    model: str
    opponent: str
    battles: int
    score: float
    win_rate: float
    lower: float
    upper: float


class LeaderboardOut(BaseModel):
    battles: int
    ratings: list[RatingOut]
    pairs: list[PairOut]
    method: str
