"""Import prompts and comparisons over HTTP (admin only): raw JSONL/CSV body or a multipart file."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from app.audit import client_ip, record
from app.auth.deps import Admin, SessionDep
from app.ops import offload
from app.ops.errors import API_ERRORS, err
from app.prompts import service
from app.prompts.parsing import FileErrors, Reject

router = APIRouter(prefix="/api/v1/import", tags=["import"], responses=API_ERRORS)

MAX_LISTED = 1000  # line errors listed in one answer


async def read_upload(request: Request) -> tuple[bytes, str]:
    """The file: a multipart `file` field, or the raw body (CSV if the content type says so)."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise HTTPException(422, "multipart upload needs a 'file' field")
        return await upload.read(), upload.filename or ""
    return await request.body(), "upload.csv" if "csv" in ctype else "upload.jsonl"


def refused(e: FileErrors) -> JSONResponse:
    """422 naming every bad line (the first MAX_LISTED); nothing was imported."""
    errors = [{"line": n, "message": m} for n, m in e.errors[:MAX_LISTED]]
    detail = "file rejected; nothing was imported"
    if len(e.errors) > MAX_LISTED:
        detail += f" ({len(e.errors)} errors, the first {MAX_LISTED} listed)"
    return JSONResponse(status_code=422, content={"detail": detail, "errors": errors})


def import_details(
    summary: Any, rejects: list[Reject], size: int, fmt: str, skip_invalid: bool
) -> dict[str, Any]:
    """What the audit trail keeps of an import."""
    return {
        **summary.__dict__,
        "rejected": len(rejects),
        "bytes": size,
        "format": fmt,
        "skip_invalid": skip_invalid,
    }


def accepted(summary: Any, rejects: list[Reject]) -> JSONResponse:
    """201 with the summary and, with skip_invalid, the lines left out."""
    body = dict(summary.__dict__)
    body["rejected"] = len(rejects)
    body["rejects"] = [{"line": r.line, "message": r.message} for r in rejects[:MAX_LISTED]]
    return JSONResponse(status_code=201, content=body)


@router.post(
    "/{kind}",
    status_code=201,
    responses={
        422: err("line-numbered `errors`; nothing imported"),
        503: err("the import's helper process died (out of memory?); nothing imported"),
    },
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
    principal: Admin,
    format: Literal["auto", "jsonl", "csv"] = "auto",
    required_judgments: int | None = Query(None, ge=1, le=100),
    skip_invalid: bool = Query(False, description="import the good lines, list the bad ones"),
) -> JSONResponse:
    """Import a JSONL or CSV file whole (or, with skip_invalid, its good lines)."""
    data, name = await read_upload(request)
    # parsing and writing run in the helper process, in their own transaction: the event loop
    # stays free, and this request holds no database lock meanwhile
    await session.commit()
    try:
        result = await offload.run(
            request.app,
            service.import_file,
            data,
            kind,
            format,
            name,
            required_judgments,
            skip_invalid,
        )
    except FileErrors as e:
        return refused(e)
    except offload.HelperDied as e:
        raise HTTPException(503, str(e)) from None
    details = import_details(result.summary, result.rejects, len(data), format, skip_invalid)
    record(session, principal, f"import.{kind}", name, details, client_ip(request))
    return accepted(result.summary, result.rejects)
