"""Admin guidelines editor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.audit import client_ip
from app.auth.deps import Admin, SessionDep, check_csrf
from app.guidelines import service
from app.web import render

router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("/guidelines", response_class=HTMLResponse)
async def edit(request: Request, session: SessionDep, principal: Admin, saved: int = 0) -> Response:
    g = await service.get(session)
    return render(request, "guidelines/edit.html", g=g, saved=bool(saved), nav="guidelines")


@router.post("/guidelines", response_model=None)
async def update(
    request: Request,
    session: SessionDep,
    principal: Admin,
    markdown: Annotated[str, Form(max_length=service.MAX_CHARS)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    # browsers send CRLF from textareas; store what the admin typed with plain newlines
    markdown = markdown.replace("\r\n", "\n")
    try:
        await service.save(session, markdown, principal, client_ip(request))
    except ValueError as e:
        g = service.Guidelines(markdown, None)
        return render(
            request, "guidelines/edit.html", 422, g=g, error=str(e), saved=False, nav="guidelines"
        )
    return RedirectResponse("/admin/guidelines?saved=1", status_code=303)
