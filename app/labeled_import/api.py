"""Admin upload of labeled preference files (same rules as the CLI)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from app.audit import client_ip, record
from app.auth.deps import Admin, SessionDep
from app.labeled_import import service
from app.ops import offload
from app.ops.errors import API_ERRORS, PlainText, err
from app.prompts.api import accepted, import_details, refused
from app.prompts.parsing import FileErrors

router = APIRouter(prefix="/api/v1/import", tags=["import"], responses=API_ERRORS)


@router.post(
    "/preferences",
    status_code=201,
    responses={
        422: err("line-numbered `errors`; nothing imported"),
        503: err("the import's helper process died (out of memory?); nothing imported"),
    },
    openapi_extra={
        "requestBody": {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}
    },
)
async def import_preferences(
    request: Request,
    session: SessionDep,
    principal: Admin,
    source: Annotated[PlainText, Query(min_length=1, max_length=200)],
    format: Literal["auto", "hf", "oasst", "arena"] = "auto",
    skip_invalid: bool = Query(False, description="import the good lines, list the bad ones"),
) -> JSONResponse:
    """Import a JSONL file of HF preference rows, OpenAssistant trees or FastChat arena battles
    as source judgments (battles also as arena battle records)."""
    data = await request.body()
    await session.commit()  # parsed and written in the helper process (app.ops.offload)
    try:
        result = await offload.run(
            request.app, service.import_file, data, source, format, skip_invalid
        )
    except FileErrors as e:
        return refused(e)
    except ValueError as e:
        raise HTTPException(422, str(e)) from None
    except offload.HelperDied as e:
        raise HTTPException(503, str(e)) from None
    details = import_details(result.summary, result.rejects, len(data), format, skip_invalid)
    record(session, principal, "import.preferences", source, details, client_ip(request))
    return accepted(result.summary, result.rejects)
