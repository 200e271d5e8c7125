"""Labeling JSON API: lease the next task, submit (and get the next) or skip it, your counters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Response

from app.auth.deps import AnyUser, Labeler, LabelerHot, SessionDep
from app.config import get_settings
from app.labeling import hot, service
from app.labeling.schemas import ConflictOut, JudgmentIn, MeOut, SkipIn, SubmitOut, TaskOut
from app.ops.errors import API_ERRORS, DbId, ErrorOut


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    store = getattr(app.state, "labeling_store", None)
    if store is not None:
        await store.close()
        app.state.labeling_store = None


router = APIRouter(prefix="/api/v1", tags=["labeling"], responses=API_ERRORS, lifespan=lifespan)
BUSY: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "database busy (pool or statement timeout)"}
}


@router.get(
    "/tasks/next",
    response_model=TaskOut,
    responses={204: {"description": "no task"}, **BUSY},
)
async def next_task(request: Request, user: LabelerHot) -> Response:
    """Your live lease if you hold one, else a new lease on the next task in queue order."""
    return await hot.next_task(request, user)


@router.post(
    "/tasks/{task_id}/judgments",
    response_model=SubmitOut,
    status_code=201,
    responses={
        200: {"model": SubmitOut, "description": "already stored; the stored judgment"},
        404: {"model": ErrorOut, "description": "no such task"},
        409: {"model": ConflictOut, "description": "not assigned, skipped, or full after expiry"},
        **BUSY,
    },
)
async def submit(
    task_id: DbId,
    body: JudgmentIn,
    request: Request,
    user: LabelerHot,
    want_next: Annotated[
        bool,
        Query(
            alias="next",
            description="also lease the next task, in the same transaction: the response "
            "(201, 200 or 409) carries it as `next` (null when there is nothing to do)",
        ),
    ] = False,
) -> Response:
    """Store a judgment exactly once (a repeat answers 200 with the stored one)."""
    return await hot.submit(request, user, task_id, body, want_next)


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
