"""Admin forms for arena campaigns; the leaderboard itself is part of /admin/models."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from app.arena import service
from app.audit import client_ip, record
from app.auth.deps import Admin, SessionDep, check_csrf
from app.ops.errors import DbId
from ml.limits import replace_nul

router = APIRouter(prefix="/admin/arena", include_in_schema=False)


async def _form(request: Request) -> dict[str, list[str]]:
    form = await request.form()
    out: dict[str, list[str]] = {}
    for k, v in form.multi_items():
        if isinstance(v, str):
            out.setdefault(k, []).append(v)
    return out


@router.post("/campaigns", response_model=None)
async def start_campaign(request: Request, session: SessionDep, admin: Admin) -> Response:
    form = await _form(request)
    check_csrf(request, (form.get("csrf_token") or [None])[0])
    versions = form.get("version", [])
    name = replace_nul((form.get("name") or [""])[0])[:200]
    target_raw = (form.get("target_battles") or ["0"])[0].strip() or "0"
    if not target_raw.isdigit() or len(versions) > service.MAX_VERSIONS:
        return await _error(request, session, "target battles must be a whole number", 422)
    try:
        c = await session.run_sync(
            service.create_campaign, versions, name, int(target_raw), admin.user_id
        )
    except service.ArenaError as e:
        return await _error(request, session, str(e), e.status)
    details = {"versions": versions, "candidate": None}
    record(session, admin, "arena.start", f"campaign {c.id}", details, client_ip(request))
    return RedirectResponse("/admin/models#arena", status_code=303)


@router.post("/campaigns/{campaign_id}/stop", response_model=None)
async def stop_campaign(
    request: Request, campaign_id: DbId, session: SessionDep, admin: Admin
) -> Response:
    form = await _form(request)
    check_csrf(request, (form.get("csrf_token") or [None])[0])
    try:
        await session.run_sync(service.stop_campaign, campaign_id)
    except service.CampaignNotFound as e:
        raise HTTPException(404, str(e)) from None
    record(session, admin, "arena.stop", f"campaign {campaign_id}", {}, client_ip(request))
    return RedirectResponse("/admin/models#arena", status_code=303)


async def _error(request: Request, session: SessionDep, message: str, status: int) -> Response:
    from app.admin.pages import _models_page

    return await _models_page(request, session, status_code=status, arena_error=message)
