"""Browser login and logout (session cookie)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from app.auth.deps import (
    Principal,
    SessionDep,
    check_csrf,
    optional_principal,
    public,
    start_session,
)
from app.auth.security import verify_password
from app.models import Role, User
from app.users import service as users
from app.web import render

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
    if "\x00" in name:  # no account has one, and PostgreSQL cannot even compare it
        error = "The name must not contain NUL characters."
        return render(request, "auth/login.html", status_code=422, error=error, next=next)
    user = await session.scalar(select(User).where(User.name == name.strip()))
    if user is None or not user.active or not verify_password(user.password_hash, password):
        return render(
            request, "auth/login.html", status_code=401, error="Wrong name or password.", next=next
        )
    start_session(request, user)
    target = next if next.startswith("/") and not next.startswith("//") else HOME[Role(user.role)]
    return RedirectResponse(target, status_code=303)


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
