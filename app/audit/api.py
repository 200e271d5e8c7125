"""The audit trail over HTTP (admin only): read with filters, export as CSV or JSON lines.
There is no route that changes or deletes an event."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from app.audit import service
from app.audit.schemas import AuditEventOut, AuditPage
from app.auth.deps import Admin, SessionDep
from app.ops.errors import API_ERRORS, MAX_DB_ID, err

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=API_ERRORS)

MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def audit_filters(
    actor: Annotated[str | None, Query(max_length=120, description="account name")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="'run' (all run.*) or 'run.start'")
    ] = None,
    since: Annotated[str | None, Query(max_length=20, description="first UTC day")] = None,
    until: Annotated[str | None, Query(max_length=20, description="last UTC day")] = None,
) -> service.Filters:
    try:
        return service.Filters.parse(actor, action, since, until)
    except service.FilterError as e:
        raise HTTPException(422, str(e)) from None


AuditFilters = Annotated[service.Filters, Depends(audit_filters)]


@router.get("", response_model=AuditPage)
async def list_events(
    session: SessionDep,
    _: Admin,
    filters: AuditFilters,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_DB_ID)] = None,
) -> AuditPage:
    """Newest events first."""
    events = await session.run_sync(service.search, filters, limit, before_id)
    out = [AuditEventOut(**service.as_dict(e)) for e in events]
    return AuditPage(events=out, next_before_id=out[-1].id if len(out) == limit else None)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {"description": "the filtered trail, oldest first", "content": dict.fromkeys(MEDIA)},
        422: err("bad filter or format"),
    },
)
async def export_events(
    request: Request,
    session: SessionDep,
    principal: Admin,
    filters: AuditFilters,
    format: Literal["csv", "jsonl"] = "csv",
) -> StreamingResponse:
    """Download the filtered trail (the download itself is recorded)."""
    service.record(
        session,
        principal,
        "audit.export",
        "audit_log",
        {"format": format, "filters": filters.as_query()},
        service.client_ip(request),
    )
    await session.commit()  # the body streams from its own read connection
    return StreamingResponse(
        service.iter_export(filters, format),
        media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="prefloop-audit.{format}"'},
    )
