"""Labeling JSON API: lease the next task, submit or skip it, see your counters."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, Response

from app.auth.deps import AnyUser, Labeler, SessionDep
from app.config import get_settings
from app.labeling import service
from app.labeling.ranking import InvalidJudgment
from app.labeling.schemas import JudgmentIn, JudgmentOut, MeOut, SkipIn, TaskOut
from app.ops.errors import API_ERRORS, DbId, ErrorOut

router = APIRouter(prefix="/api/v1", tags=["labeling"], responses=API_ERRORS)


@router.get("/tasks/next", response_model=TaskOut, responses={204: {"description": "no task"}})
async def next_task(session: SessionDep, user: Labeler) -> TaskOut | Response:
    lease = timedelta(minutes=get_settings().lease_minutes)
    task = await service.next_task(session, user.user_id, lease)
    return task if task is not None else Response(status_code=204)


@router.post(
    "/tasks/{task_id}/judgments",
    response_model=JudgmentOut,
    status_code=201,
    responses={
        200: {"model": JudgmentOut, "description": "already stored; the stored judgment"},
        404: {"model": ErrorOut, "description": "no such task"},
        409: {"model": ErrorOut, "description": "not assigned, skipped, or full after expiry"},
    },
)
async def submit(
    task_id: DbId, body: JudgmentIn, session: SessionDep, user: Labeler, response: Response
) -> JudgmentOut:
    settings = get_settings()
    try:
        result = await service.submit(
            session, user.user_id, task_id, body, settings.criteria, settings.flags
        )
    except service.NotFound as e:
        raise HTTPException(404, str(e)) from None
    except service.Conflict as e:
        raise HTTPException(409, str(e)) from None
    except InvalidJudgment as e:
        raise HTTPException(422, str(e)) from None
    if not result.created:
        response.status_code = 200
    return JudgmentOut.model_validate(result.judgment)


@router.post(
    "/tasks/{task_id}/skip",
    status_code=204,
    responses={409: {"model": ErrorOut, "description": "you hold no lease on this task"}},
)
async def skip(task_id: DbId, body: SkipIn, session: SessionDep, user: Labeler) -> Response:
    try:
        await service.skip(session, user.user_id, task_id, body.reason)
    except service.Conflict as e:
        raise HTTPException(409, str(e)) from None
    return Response(status_code=204)


@router.get("/me", response_model=MeOut)
async def me(session: SessionDep, user: AnyUser) -> MeOut:
    today, total = await service.counts(session, user.user_id)
    s = get_settings()
    return MeOut(
        id=user.user_id,
        name=user.name,
        role=user.role.value,
        judged_today=today,
        judged_total=total,
        criteria=s.criteria,
        flags=s.flags,
    )
