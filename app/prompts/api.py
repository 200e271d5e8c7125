"""Import prompts and comparisons over HTTP (admin only): raw JSONL/CSV body or a multipart file."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app.auth.deps import Admin, SessionDep
from app.config import get_settings
from app.ops.errors import API_ERRORS
from app.prompts import parsing, store

router = APIRouter(prefix="/api/v1/import", tags=["import"], responses=API_ERRORS)


async def _body(request: Request) -> tuple[bytes, str]:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise HTTPException(422, "multipart upload needs a 'file' field")
        return await upload.read(), upload.filename or ""
    return await request.body(), "upload.csv" if "csv" in ctype else "upload.jsonl"


def _run(session: Session, data: bytes, kind: str, fmt: str, name: str, required: int | None):
    records = parsing.parse(data, kind, fmt, name)  # type: ignore[arg-type]
    if kind == "prompts":
        return store.import_prompts(session, records)
    default = required or get_settings().default_required_judgments
    return store.import_comparisons(session, records, default)[0]


@router.post(
    "/{kind}",
    status_code=201,
    responses={422: {"description": "line-numbered errors; nothing imported"}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            }
        }
    },
)
async def import_file(
    kind: Literal["prompts", "comparisons"],
    request: Request,
    session: SessionDep,
    _: Admin,
    format: Literal["auto", "jsonl", "csv"] = "auto",
    required_judgments: int | None = Query(None, ge=1, le=100),
) -> JSONResponse:
    data, name = await _body(request)
    try:
        summary = await session.run_sync(_run, data, kind, format, name, required_judgments)
    except parsing.FileErrors as e:
        return JSONResponse(
            status_code=422,
            content={
                "detail": "file rejected; nothing was imported",
                "errors": [{"line": n, "message": m} for n, m in e.errors[:1000]],
            },
        )
    return JSONResponse(status_code=201, content=summary.__dict__)
