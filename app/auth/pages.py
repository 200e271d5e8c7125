"""Browser login and logout (session cookie)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from app.audit import client_ip
from app.auth import throttle
from app.auth.deps import (
    Principal,
    SessionDep,
    check_csrf,
    optional_principal,
    public,
    start_session,
)
from app.auth.security import DUMMY_HASH, verify_password_off_loop
from app.models import Role, User
from app.users import service as users
from app.web import render
from ml.limits import has_nul

router = APIRouter(include_in_schema=False, dependencies=[Depends(public)])

HOME = {Role.labeler: "/label", Role.admin: "/admin", Role.researcher: "/research"}


@router.get("/", response_model=None)
async def home(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> RedirectResponse:
    return RedirectResponse(HOME[principal.role] if principal else "/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "") -> Response:
    return render(request, "auth/login.html", next=next if next.startswith("/") else "")


@router.post("/login", response_model=None)
async def login(
    request: Request,
    session: SessionDep,
    name: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    if has_nul(name):  # no account has one, and PostgreSQL cannot even compare it
        error = "The name must not contain NUL characters."
        return render(request, "auth/login.html", status_code=422, error=error, next=next)
    name = name.strip()
    account, address = throttle.account_key(name), throttle.address_key(client_ip(request))
    wait = await throttle.blocked_for(session, [account, address])
    if wait:
        return _throttled(request, wait, next)
    user = await session.scalar(select(User).where(User.name == name))
    # no transaction stays open while hashing (SQLite: no lock held across it)
    await session.commit()
    # unknown names cost the same as known ones (a dummy hash): timing tells nothing
    stored = user.password_hash if user is not None else DUMMY_HASH
    valid = await verify_password_off_loop(stored, password)
    if user is None or not user.active or not valid:
        wait = await throttle.failed(session, account, address)
        if wait:
            return _throttled(request, wait, next)
        return render(
            request, "auth/login.html", status_code=401, error="Wrong name or password.", next=next
        )
    await throttle.succeeded(session, account)
    start_session(request, user)
    target = next if next.startswith("/") and not next.startswith("//") else HOME[Role(user.role)]
    return RedirectResponse(target, status_code=303)


def _throttled(request: Request, wait: int, next: str) -> Response:
    error = f"Too many failed logins. Try again in {wait} seconds."
    response = render(request, "auth/login.html", status_code=429, error=error, next=next)
    response.headers["Retry-After"] = str(wait)
    return response


@router.post("/logout", response_model=None)
async def logout(
    request: Request, session: SessionDep, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    """End this user's sessions on the server (a copied cookie stops working too)."""
    check_csrf(request, csrf_token)
    uid, gen = request.session.get("uid"), request.session.get("gen")
    if isinstance(uid, int) and isinstance(gen, int):
        await session.run_sync(users.logout, uid, gen)
    request.session.clear()
    # the login page clears work-in-progress drafts kept in this browser
    return RedirectResponse("/login?logged_out=1", status_code=303)
