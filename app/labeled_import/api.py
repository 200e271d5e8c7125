"""Admin upload of labeled preference files (same rules as the CLI)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from app.auth.deps import Admin, SessionDep
from app.labeled_import import parsers, service
from app.prompts.parsing import FileErrors

router = APIRouter(prefix="/api/v1/import", tags=["import"])


@router.post(
    "/preferences",
    status_code=201,
    responses={422: {"description": "line-numbered errors; nothing imported"}},
    openapi_extra={
        "requestBody": {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}
    },
)
async def import_preferences(
    request: Request,
    session: SessionDep,
    _: Admin,
    source: str = Query(min_length=1, max_length=200),
    format: Literal["auto", "hf", "oasst"] = "auto",
) -> JSONResponse:
    """Import a JSONL file of HF preference rows or OpenAssistant trees as source judgments."""
    data = await request.body()
    try:
        fmt, records = parsers.parse(data, format)
    except FileErrors as e:
        return JSONResponse(
            status_code=422,
            content={
                "detail": "file rejected; nothing was imported",
                "errors": [{"line": n, "message": m} for n, m in e.errors[:1000]],
            },
        )
    try:
        summary = await session.run_sync(service.import_preferences, records, source, fmt)
    except ValueError as e:
        raise HTTPException(422, str(e)) from None
    return JSONResponse(status_code=201, content=summary.__dict__)
