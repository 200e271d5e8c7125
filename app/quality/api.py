"""Labeler quality JSON API: gold tasks, per-labeler statistics and lineage, pause, clear flag,
exclude (and retrain) and its undo. Admins only, except a labeler's own gold accuracy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict

from app.auth.deps import Admin, SessionDep
from app.ops.errors import API_ERRORS, DbId
from app.quality import service
from app.quality.gold import GoldError, GoldIn, describe

router = APIRouter(prefix="/api/v1", tags=["quality"], responses=API_ERRORS)


class GoldOut(BaseModel):
    task_id: int
    status: str
    gold: dict[str, Any] | None
    accepted: str | None  # the accepted answers in positions (1-based), e.g. "1 > 2 or 1 = 2"


class ExcludeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    retrain: bool = True
    then_policy: bool = True


class FlagSettingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    show_gold_accuracy: bool


def _gold_out(session: Any, task: Any) -> GoldOut:
    accepted = describe(task.gold, service.candidate_ids(session, task.id)) if task.gold else None
    return GoldOut(task_id=task.id, status=str(task.status), gold=task.gold, accepted=accepted)


@router.put("/tasks/{task_id}/gold", response_model=GoldOut)
async def set_gold(task_id: DbId, body: GoldIn, session: SessionDep, _: Admin) -> GoldOut:
    """Make a task gold: `{"ranking": [[0], [1]]}` or `{"choice": ["a", "tie"]}` (positions in
    the task's candidate order)."""

    def run(s: Any) -> GoldOut:
        return _gold_out(s, service.set_gold(s, task_id, body))

    try:
        return await session.run_sync(run)
    except service.NotFound as e:
        raise HTTPException(404, str(e)) from None
    except GoldError as e:
        raise HTTPException(422, str(e)) from None


@router.delete("/tasks/{task_id}/gold", response_model=GoldOut)
async def unset_gold(task_id: DbId, session: SessionDep, _: Admin) -> GoldOut:
    def run(s: Any) -> GoldOut:
        return _gold_out(s, service.unset_gold(s, task_id))

    try:
        return await session.run_sync(run)
    except service.NotFound as e:
        raise HTTPException(404, str(e)) from None
    except service.QualityError as e:
        raise HTTPException(409, str(e)) from None
