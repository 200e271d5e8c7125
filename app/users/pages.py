"""/admin/users: create accounts, deactivate/activate, change roles, reset passwords, create
and revoke tokens. A generated password or token is shown once, in the answer to the form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.audit import client_ip
from app.auth.deps import Admin, SessionDep, check_csrf
from app.models import Role
from app.ops.errors import DbId
from app.users import service
from app.web import render
from ml.limits import has_nul

router = APIRouter(prefix="/admin/users", include_in_schema=False)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(request, values.get("csrf_token"))
    return values


async def _list(request: Request, session: SessionDep, status: int = 200, **extra: Any) -> Response:
    rows = await session.run_sync(service.list_users)
    return render(
        request, "admin/users.html", status, rows=rows, roles=list(Role), nav="users", **extra
    )


async def _detail(
    request: Request, session: SessionDep, user_id: int, status: int = 200, **extra: Any
) -> Response:
    try:
        user = await session.run_sync(service.get_user, user_id)
    except service.NotFound:
        raise HTTPException(404, f"user {user_id} does not exist") from None
    tokens = await session.run_sync(service.list_tokens, user_id)
    return render(
        request,
        "admin/user_detail.html",
        status,
        u=user,
        tokens=tokens,
        roles=list(Role),
        nav="users",
        **extra,
    )


@router.get("", response_class=HTMLResponse)
async def users_page(request: Request, session: SessionDep, principal: Admin) -> Response:
    return await _list(request, session)


@router.post("", response_model=None)
async def create_user(request: Request, session: SessionDep, principal: Admin) -> Response:
    form = await _form(request)
    name, role = form.get("name", ""), form.get("role", "")
    password = form.get("password") or None
    try:
        new = await service.new_password(password)  # argon2 off the event loop
        user, pw = await session.run_sync(
            service.create_user, name, role, new, principal, client_ip(request)
        )
    except service.UserError as e:
        return await _list(request, session, 409 if isinstance(e, service.Conflict) else 422,
                           error=str(e), submitted=form)  # fmt: skip
    shown = None if password else pw
    return await _list(request, session, created=user.name, password=shown)


@router.get("/{user_id}", response_class=HTMLResponse)
async def user_page(
    request: Request, user_id: DbId, session: SessionDep, principal: Admin
) -> Response:
    return await _detail(request, session, user_id)


async def _change(
    request: Request, session: SessionDep, user_id: int, fn: Callable[..., Any], *args: Any
) -> Any:
    """Run a service change on user `user_id`; returns its result or an error page."""
    try:
        who, ip = request.state.principal, client_ip(request)
        return await session.run_sync(lambda s: fn(s, *args, who, ip))
    except service.NotFound:
        raise HTTPException(404, f"user {user_id} does not exist") from None
    except service.UserError as e:
        status = 409 if isinstance(e, service.Conflict) else 422
        return await _detail(request, session, user_id, status, error=str(e))


def _back(user_id: int, note: str) -> RedirectResponse:
    return RedirectResponse(f"/admin/users/{user_id}?done={note}", status_code=303)


@router.post("/{user_id}/active", response_model=None)
async def set_active(
    request: Request, user_id: DbId, session: SessionDep, principal: Admin
) -> Response:
    form = await _form(request)
    result = await _change(
        request, session, user_id, service.set_active, user_id, form.get("active") == "1"
    )
    return result if isinstance(result, Response) else _back(user_id, "active")


@router.post("/{user_id}/role", response_model=None)
async def set_role(
    request: Request, user_id: DbId, session: SessionDep, principal: Admin
) -> Response:
    form = await _form(request)
    result = await _change(
        request, session, user_id, service.set_role, user_id, form.get("role", "")
    )
    return result if isinstance(result, Response) else _back(user_id, "role")


@router.post("/{user_id}/password", response_model=None)
async def reset_password(
    request: Request, user_id: DbId, session: SessionDep, principal: Admin
) -> Response:
    await _form(request)
    new = await service.new_password(None)  # argon2 off the event loop
    result = await _change(request, session, user_id, service.set_password, user_id, new)
    if isinstance(result, Response):
        return result
    return await _detail(request, session, user_id, password=result[1])


@router.post("/{user_id}/tokens", response_model=None)
async def create_token(
    request: Request, user_id: DbId, session: SessionDep, principal: Admin
) -> Response:
    form = await _form(request)
    try:
        user = await session.run_sync(service.get_user, user_id)
        expires = form.get("expires_in", "").strip()
        expiry = service.parse_duration(expires) if expires else None
    except service.NotFound:
        raise HTTPException(404, f"user {user_id} does not exist") from None
    except service.UserError as e:
        return await _detail(request, session, user_id, 422, error=str(e))
    name = (form.get("name") or "web").strip()[:100] or "web"
    if has_nul(name):
        return await _detail(request, session, user_id, 422, error="name must not contain NUL")
    token, plain = await session.run_sync(
        service.create_token, user.name, name, principal, client_ip(request), expiry
    )
    return await _detail(request, session, user_id, token=plain, token_name=token.name)


@router.post("/{user_id}/tokens/{token_id}/revoke", response_model=None)
async def revoke_token(
    request: Request, user_id: DbId, token_id: DbId, session: SessionDep, principal: Admin
) -> Response:
    await _form(request)
    try:
        rows = await session.run_sync(service.list_tokens, user_id)
    except service.NotFound:
        raise HTTPException(404, f"user {user_id} does not exist") from None
    if not any(r.token.id == token_id for r in rows):
        raise HTTPException(404, f"user {user_id} has no token {token_id}")
    await session.run_sync(service.revoke_token, token_id, principal, client_ip(request))
    return _back(user_id, "revoked")
