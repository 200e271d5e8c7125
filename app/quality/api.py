"""Labeler quality JSON API: gold tasks, per-labeler statistics and lineage, pause, clear flag,
exclude (and retrain) and its undo. Admins only, except a labeler's own gold accuracy. Every
change is recorded in the audit log."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from app.audit import client_ip
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
    weighting: Literal["none", "agreement", "gold"] = "none"  # the retrain's (a DPO run's too)


class FlagSettingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    show_gold_accuracy: bool


def _gold_out(session: Any, task: Any) -> GoldOut:
    accepted = describe(task.gold, service.candidate_ids(session, task.id)) if task.gold else None
    return GoldOut(task_id=task.id, status=str(task.status), gold=task.gold, accepted=accepted)


@router.put("/tasks/{task_id}/gold", response_model=GoldOut)
async def set_gold(
    request: Request, task_id: DbId, body: GoldIn, session: SessionDep, principal: Admin
) -> GoldOut:
    """Make a task gold: `{"ranking": [[0], [1]]}` or `{"choice": ["a", "tie"]}` (positions in
    the task's candidate order)."""
    ip = client_ip(request)

    def run(s: Any) -> GoldOut:
        task = service.set_gold(s, task_id, body, principal, ip)
        return _gold_out(s, task)

    try:
        return await session.run_sync(run)
    except service.NotFound as e:
        raise HTTPException(404, str(e)) from None
    except GoldError as e:
        raise HTTPException(422, str(e)) from None


@router.delete("/tasks/{task_id}/gold", response_model=GoldOut)
async def unset_gold(
    request: Request, task_id: DbId, session: SessionDep, principal: Admin
) -> GoldOut:
    ip = client_ip(request)

    def run(s: Any) -> GoldOut:
        return _gold_out(s, service.unset_gold(s, task_id, principal, ip))

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


@router.get("/judgments/{judgment_id}/lineage")
async def judgment_lineage(judgment_id: DbId, session: SessionDep, _: Admin) -> dict[str, Any]:
    """Where one judgment went: export snapshots (recorded, or inferred for old ones), reward
    versions trained on it, policy versions trained against those (or from such a policy)."""
    from app.quality import lineage

    out = await session.run_sync(lambda s: lineage.of_judgment(s, judgment_id))
    if out is None:
        raise HTTPException(404, f"judgment {judgment_id} does not exist")
    return {"judgment_id": judgment_id, **out.as_dict()}


async def _simple(
    request: Request, session: Any, principal: Any, user_id: int, action: str
) -> dict[str, Any]:
    ip = client_ip(request)

    def run(s: Any) -> None:
        service.act(s, _labeler_or_404(s, user_id).id, action, principal, ip)

    await session.run_sync(run)
    return {"user_id": user_id, "done": action}


@router.post("/labelers/{user_id}/pause")
async def pause(
    request: Request, user_id: DbId, session: SessionDep, principal: Admin
) -> dict[str, Any]:
    """No new tasks for this labeler (their live lease stays theirs until it expires)."""
    return {**await _simple(request, session, principal, user_id, "pause"), "paused": True}


@router.post("/labelers/{user_id}/resume")
async def resume(
    request: Request, user_id: DbId, session: SessionDep, principal: Admin
) -> dict[str, Any]:
    return {**await _simple(request, session, principal, user_id, "resume"), "paused": False}


@router.post("/labelers/{user_id}/clear-flag")
async def clear_flag(
    request: Request, user_id: DbId, session: SessionDep, principal: Admin
) -> dict[str, Any]:
    """Flags are recomputed from the judgments made after now."""
    return await _simple(request, session, principal, user_id, "clear-flag")


@router.post("/labelers/{user_id}/exclude")
async def exclude(
    request: Request, user_id: DbId, body: ExcludeIn, session: SessionDep, principal: Admin
) -> dict[str, Any]:
    """Mark the labeler's judgments excluded (kept; out of training and trl exports; their tasks
    reopen), pause them, and with `retrain` queue a reward run (then the policy run)."""
    ip = client_ip(request)

    def run(s: Any) -> dict[str, Any]:
        uid = _labeler_or_404(s, user_id).id
        extra = {"weighting": body.weighting} if body.weighting != "none" else None
        r = service.exclude(s, uid, principal, body.retrain, body.then_policy, extra, ip=ip)
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
async def include(
    request: Request, user_id: DbId, session: SessionDep, principal: Admin
) -> dict[str, Any]:
    """Undo the labeler's exclusion (recorded on it and in the audit log)."""
    ip = client_ip(request)

    def run(s: Any) -> dict[str, Any]:
        ex = service.undo_exclusion(s, _labeler_or_404(s, user_id).id, principal, ip)
        assert ex.undone_at is not None  # undo_exclusion sets it
        return {"exclusion_id": ex.id, "undone_at": ex.undone_at.isoformat()}

    try:
        return await session.run_sync(run)
    except service.QualityError as e:
        raise HTTPException(409, str(e)) from None


@router.put("/quality/settings")
async def quality_settings(
    request: Request, body: FlagSettingIn, session: SessionDep, principal: Admin
) -> dict[str, Any]:
    ip = client_ip(request)
    await session.run_sync(
        lambda s: service.set_show_gold_accuracy(s, body.show_gold_accuracy, principal, ip)
    )
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
