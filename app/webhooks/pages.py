"""/admin/webhooks: endpoints (create: the secret is shown once), enable/disable, test-send, and
the last deliveries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.audit import client_ip, record
from app.auth.deps import Admin, SessionDep, check_csrf
from app.ops.errors import DbId
from app.web import render
from app.webhooks import service
from app.webhooks.events import EVENTS

router = APIRouter(prefix="/admin/webhooks", include_in_schema=False)

MAX_FIELD = 4000  # form values longer than any valid URL or description are refused outright


async def _page(
    request: Request, session: SessionDep, status_code: int = 200, **extra: Any
) -> Response:
    endpoints = await session.run_sync(service.list_endpoints)
    deliveries = await session.run_sync(service.recent_deliveries)
    urls = {e.id: e.url for e in endpoints}
    return render(
        request,
        "admin/webhooks.html",
        status_code=status_code,
        endpoints=endpoints,
        deliveries=deliveries,
        urls=urls,
        events=EVENTS,
        nav="webhooks",
        **extra,
    )


@router.get("", response_class=HTMLResponse)
async def webhooks(request: Request, session: SessionDep, principal: Admin) -> Response:
    return await _page(request, session)


@router.post("", response_model=None)
async def create(request: Request, session: SessionDep, principal: Admin) -> Response:
    form = await request.form()
    check_csrf(request, _text(form.get("csrf_token")))
    url, description = _text(form.get("url")), _text(form.get("description"))
    events = [v for v in form.getlist("events") if isinstance(v, str)]
    submitted = {"url": url[:MAX_FIELD], "description": description[:MAX_FIELD], "events": events}
    try:
        if len(url) > MAX_FIELD or len(description) > MAX_FIELD or len(events) > len(EVENTS):
            raise service.WebhookError("a field is too long")
        created = await session.run_sync(
            service.create_endpoint, url, events, description, principal.user_id
        )
    except service.WebhookError as e:
        return await _page(request, session, status_code=400, error=str(e), submitted=submitted)
    endpoint = created.endpoint
    details = {"url": _where(endpoint.url), "events": endpoint.events}  # never the secret
    record(
        session, principal, "webhook.create", f"webhook {endpoint.id}", details, client_ip(request)
    )
    # the one time the secret is shown: rendered into this response, never again
    return await _page(
        request, session, status_code=201, created=created.endpoint, secret=created.secret
    )


def _where(url: str) -> str:
    """The receiver as the audit trail names it: no query string or credentials (they may hold
    secrets)."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    return f"{u.scheme}://{u.hostname or ''}{f':{u.port}' if u.port else ''}{u.path}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@router.post("/{endpoint_id}/active", response_model=None)
async def set_active(
    request: Request, endpoint_id: DbId, session: SessionDep, principal: Admin
) -> Response:
    form = await request.form()
    check_csrf(request, _text(form.get("csrf_token")))
    active = _text(form.get("active")) == "1"
    try:
        endpoint = await session.run_sync(service.set_active, endpoint_id, active)
    except service.NotFound as e:
        raise HTTPException(404, str(e)) from None
    action = "webhook.enable" if active else "webhook.disable"
    details = {"url": _where(endpoint.url)}
    record(session, principal, action, f"webhook {endpoint_id}", details, client_ip(request))
    return RedirectResponse("/admin/webhooks", status_code=303)


@router.post("/{endpoint_id}/test", response_model=None)
async def test_send(
    request: Request, endpoint_id: DbId, session: SessionDep, principal: Admin
) -> Response:
    form = await request.form()
    check_csrf(request, _text(form.get("csrf_token")))
    try:
        await session.run_sync(service.send_test, endpoint_id)
    except service.NotFound as e:
        raise HTTPException(404, str(e)) from None
    except service.WebhookError as e:
        return await _page(request, session, status_code=409, error=str(e))
    record(session, principal, "webhook.test", f"webhook {endpoint_id}", {}, client_ip(request))
    return RedirectResponse("/admin/webhooks#deliveries", status_code=303)
