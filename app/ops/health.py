"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.auth.deps import public
from app.ops.migrate import current_revision, head_revision

router = APIRouter(tags=["ops"], dependencies=[Depends(public)])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    try:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            current = await conn.run_sync(current_revision)
    except Exception as e:  # any driver error means "not ready"
        return JSONResponse({"status": "unavailable", "database": str(e)[:200]}, status_code=503)
    head = head_revision()
    if current != head:
        return JSONResponse(
            {"status": "migrations pending", "current": current, "head": head}, status_code=503
        )
    return JSONResponse({"status": "ready", "revision": current})
