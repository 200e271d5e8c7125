"""Run queue over HTTP (admin only): start, list, show, cancel."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError

from app.audit import client_ip, record
from app.auth.deps import Admin, SessionDep
from app.models import RunKind, RunStatus
from app.ops.errors import API_ERRORS, MAX_DB_ID
from app.runs import service
from app.runs.schemas import RunCreate, RunList, RunRead

router = APIRouter(prefix="/api/v1/runs", tags=["runs"], responses=API_ERRORS)

RunId = Path(ge=1, le=MAX_DB_ID)


@router.post("", status_code=201)
async def start_run(
    request: Request, body: RunCreate, session: SessionDep, principal: Admin
) -> RunRead:
    """Queue a run; a worker (`prefloop worker`) picks it up. `params` are validated against
    the kind's parameter model (ml/params.py): a 422 names each bad field."""
    try:
        run = await session.run_sync(service.create_run, body.kind, body.params, principal.user_id)
    except service.RunParamError as e:
        raise RequestValidationError(
            [{**i, "loc": ["body", "params", *i["loc"]]} for i in e.issues]
        ) from None
    except service.RunError as e:
        raise HTTPException(422, str(e)) from None
    details = {"kind": str(run.kind), "params": run.params}
    record(session, principal, "run.start", f"run {run.id}", details, client_ip(request))
    return RunRead.model_validate(run)


@router.get("")
async def list_runs(
    session: SessionDep,
    _: Admin,
    status: RunStatus | None = None,
    kind: RunKind | None = None,
    limit: int = Query(50, ge=1, le=500),
    before_id: int | None = Query(None, ge=1, le=MAX_DB_ID, description="runs older than this id"),
) -> RunList:
    runs = await session.run_sync(service.list_runs, status, kind, limit, before_id)
    return RunList(runs=[RunRead.model_validate(r) for r in runs])


@router.get("/{run_id}")
async def get_run(session: SessionDep, _: Admin, run_id: int = RunId) -> RunRead:
    try:
        run = await session.run_sync(service.get_run, run_id)
    except service.RunNotFound as e:
        raise HTTPException(404, str(e)) from None
    return RunRead.model_validate(run)


@router.post("/{run_id}/cancel")
async def cancel_run(
    request: Request, session: SessionDep, principal: Admin, run_id: int = RunId
) -> RunRead:
    """Cancel a queued run now, or ask the worker running it to stop (within seconds)."""
    try:
        run = await session.run_sync(service.request_cancel, run_id)
    except service.RunNotFound as e:
        raise HTTPException(404, str(e)) from None
    except service.RunError as e:
        raise HTTPException(409, str(e)) from None
    details = {"kind": str(run.kind), "status": str(run.status)}
    record(session, principal, "run.cancel", f"run {run_id}", details, client_ip(request))
    return RunRead.model_validate(run)
