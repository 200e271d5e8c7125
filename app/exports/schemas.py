"""Export filters, shapes and formats, and the snapshot wire format."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.ops.errors import DbId, PlainText

SnapshotId = DbId
Shape = Literal["trl", "raw", "rankings"]
Format = Literal["jsonl", "parquet", "csv"]
SHAPES: tuple[str, ...] = ("trl", "raw", "rankings")
FORMATS: tuple[str, ...] = ("jsonl", "parquet", "csv")


class ExportFilters(BaseModel):
    """Which judgments go into an export; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    since: datetime | None = Field(None, description="judgments created at or after (UTC)")
    until: datetime | None = Field(None, description="judgments created before (UTC)")
    labelers: list[PlainText] = Field([], description="labeler names or pseudonymous ids (lab_...)")
    model_versions: list[PlainText] = Field(
        [], description="tasks with a candidate from one of these model versions (name or id)"
    )
    tags: list[PlainText] = Field([], description="tasks tagged with any of these")
    sources: list[PlainText] = Field(
        [], description="judgments imported from, or candidates coming from, these sources"
    )
    min_agreement: float = Field(
        0.0, ge=0.0, le=1.0, description="drop pairs (trl) or tasks (raw, rankings) below this"
    )
    exclude_flagged: bool = Field(False, description="drop judgments carrying any flag")
    include_ties: bool = Field(True, description="keep judgments containing a tie")
    include_both_bad: bool = Field(True, description="keep 'both bad' judgments")
    margin: bool = Field(False, description="trl: add a 'margin' column (enters the RM loss)")

    @field_validator("labelers", "model_versions", "tags", "sources")
    @classmethod
    def _clean(cls, v: list[str]) -> list[str]:
        return sorted({s.strip() for s in v if s and s.strip()})

    def recorded(self) -> dict[str, Any]:
        """The filters as stored in a snapshot (JSON-safe, defaults included)."""
        return self.model_dump(mode="json")


class PreviewOut(BaseModel):
    judgments: int
    tasks: int
    labelers: int
    imported: int
    pairs: int
    tied_pairs: int
    rows: dict[str, int]


class SnapshotOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    shape: str
    format: str
    filters: dict[str, Any]
    row_count: int
    sha256: str | None
    card: str | None
    created_by_id: int | None
    created_at: datetime
