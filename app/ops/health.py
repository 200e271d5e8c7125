"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.auth.deps import public
from app.ops.errors import API_ERRORS
from app.ops.migrate import current_revision, head_revision

log = logging.getLogger("prefloop")

router = APIRouter(tags=["ops"], dependencies=[Depends(public)], responses=API_ERRORS)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "database unreachable or migrations pending"}},
)
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers and its schema is at the code's migration head."""
    try:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            current = await conn.run_sync(current_revision)
    except Exception:  # any driver error means "not ready"; the reason goes to the log only
        log.exception("readiness check: the database is unreachable")
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    head = head_revision()
    if current != head:
        return JSONResponse(
            {"status": "migrations pending", "current": current, "head": head}, status_code=503
        )
    return JSONResponse({"status": "ready", "revision": current})
