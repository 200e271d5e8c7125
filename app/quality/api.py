"""Labeler quality JSON API: gold tasks, per-labeler statistics and lineage, pause, clear flag,
exclude (and retrain) and its undo. Admins only, except a labeler's own gold accuracy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict

from app.auth.deps import Admin, Labeler, SessionDep
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


def _labeler_or_404(s: Any, ref: int) -> Any:
    try:
        return service.labeler(s, ref)
    except service.NotFound as e:
        raise HTTPException(404, str(e)) from None


@router.get("/labelers")
async def list_labelers(session: SessionDep, _: Admin) -> list[dict[str, Any]]:
    """Every labeler's statistics, flags, state and trust weights."""

    def run(s: Any) -> list[dict[str, Any]]:
        stats = service.labeler_stats(s)
        return [stats[k].as_dict() for k in sorted(stats)]

    return await session.run_sync(run)


@router.get("/labelers/{user_id}")
async def get_labeler(user_id: DbId, session: SessionDep, _: Admin) -> dict[str, Any]:
    """One labeler's statistics plus lineage (snapshots, reward and policy versions that used
    their judgments) and exclusions."""
    from app.quality import lineage

    def run(s: Any) -> dict[str, Any]:
        user = _labeler_or_404(s, user_id)
        out = service.labeler_stats(s)[user.id].as_dict()
        out["lineage"] = lineage.of_labeler(s, user.id, user.name).as_dict()
        out["exclusions"] = [
            {
                "id": e.id,
                "judgments": e.judgment_count,
                "reward_run_id": e.reward_run_id,
                "created_at": e.created_at.isoformat(),
                "undone_at": e.undone_at.isoformat() if e.undone_at else None,
            }
            for e in service.exclusions(s, user.id)
        ]
        return out

    return await session.run_sync(run)


@router.post("/labelers/{user_id}/pause")
async def pause(user_id: DbId, session: SessionDep, _: Admin) -> dict[str, Any]:
    await session.run_sync(lambda s: service.set_paused(s, _labeler_or_404(s, user_id).id, True))
    return {"user_id": user_id, "paused": True}


@router.post("/labelers/{user_id}/resume")
async def resume(user_id: DbId, session: SessionDep, _: Admin) -> dict[str, Any]:
    await session.run_sync(lambda s: service.set_paused(s, _labeler_or_404(s, user_id).id, False))
    return {"user_id": user_id, "paused": False}


@router.post("/labelers/{user_id}/clear-flag")
async def clear_flag(user_id: DbId, session: SessionDep, _: Admin) -> dict[str, Any]:
    await session.run_sync(lambda s: service.clear_flag(s, _labeler_or_404(s, user_id).id))
    return {"user_id": user_id, "flag_cleared": True}


@router.post("/labelers/{user_id}/exclude")
async def exclude(
    user_id: DbId, body: ExcludeIn, session: SessionDep, principal: Admin
) -> dict[str, Any]:
    """Mark the labeler's judgments excluded (kept; out of training and trl exports), pause
    them, and with `retrain` queue a reward run (then the policy run) without them."""

    def run(s: Any) -> dict[str, Any]:
        uid = _labeler_or_404(s, user_id).id
        r = service.exclude(s, uid, principal.user_id, body.retrain, body.then_policy)
        return {
            "exclusion_id": r.exclusion.id,
            "judgments": r.judgments,
            "reward_run_id": r.reward_run_id,
        }

    try:
        return await session.run_sync(run)
    except service.QualityError as e:
        raise HTTPException(409, str(e)) from None


@router.post("/labelers/{user_id}/include")
async def include(user_id: DbId, session: SessionDep, principal: Admin) -> dict[str, Any]:
    """Undo the labeler's exclusion (recorded on it)."""

    def run(s: Any) -> dict[str, Any]:
        ex = service.undo_exclusion(s, _labeler_or_404(s, user_id).id, principal.user_id)
        return {"exclusion_id": ex.id, "undone_at": ex.undone_at.isoformat()}  # type: ignore[union-attr]

    try:
        return await session.run_sync(run)
    except service.QualityError as e:
        raise HTTPException(409, str(e)) from None


@router.put("/quality/settings")
async def quality_settings(body: FlagSettingIn, session: SessionDep, _: Admin) -> dict[str, Any]:
    await session.run_sync(service.set_show_gold_accuracy, body.show_gold_accuracy)
    return {"show_gold_accuracy": body.show_gold_accuracy}


@router.get("/me/gold")
async def my_gold(session: SessionDep, principal: Labeler) -> dict[str, Any]:
    """Your own gold accuracy, when an admin lets labelers see it (`shown`: false otherwise)."""

    def run(s: Any) -> dict[str, Any]:
        if not service.show_gold_accuracy(s):
            return {"shown": False}
        correct, n = service.own_gold_accuracy(s, principal.user_id)
        return {"shown": True, "correct": correct, "answered": n,
                "accuracy": correct / n if n else None}  # fmt: skip

    return await session.run_sync(run)
