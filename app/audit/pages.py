"""/admin/audit: the trail with filters and export links (read-only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.audit import service
from app.auth.deps import Admin, SessionDep
from app.ops.errors import MAX_DB_ID
from app.web import render

router = APIRouter(prefix="/admin", include_in_schema=False)

PAGE = 100


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    session: SessionDep,
    principal: Admin,
    actor: Annotated[str, Query(max_length=120)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=20)] = "",
    until: Annotated[str, Query(max_length=20)] = "",
    before_id: Annotated[int | None, Query(ge=1, le=MAX_DB_ID)] = None,
) -> Response:
    form = {"actor": actor, "action": action, "since": since, "until": until}
    try:
        filters = service.Filters.parse(actor, action, since, until)
    except service.FilterError as e:
        context = {"events": [], "form": form, "query": {}, "older": None, "nav": "audit"}
        return render(
            request, "admin/audit.html", 422, actions=service.ACTIONS, error=str(e), **context
        )
    events = await session.run_sync(service.search, filters, PAGE, before_id)
    older = events[-1].id if len(events) == PAGE else None
    return render(
        request,
        "admin/audit.html",
        events=events,
        form=form,
        query=filters.as_query(),
        actions=service.ACTIONS,
        older=older,
        nav="audit",
    )
