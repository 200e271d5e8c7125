"""Account and token administration (admin only): create, list, deactivate/activate, change
role, reset password, create/list/revoke tokens. Each change is audited and holds from the
affected user's next request on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from app.audit import client_ip
from app.auth.deps import Admin, SessionDep
from app.ops.errors import API_ERRORS, DbId, ErrorOut
from app.users import service
from app.users.schemas import (
    PasswordOut,
    PasswordSet,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserCreate,
    UserCreated,
    UserListed,
    UserRead,
    UserUpdate,
)
from ml.limits import has_nul

router = APIRouter(prefix="/api/v1", tags=["users"], responses=API_ERRORS)


def _error(e: service.UserError) -> HTTPException:
    if isinstance(e, service.NotFound):
        return HTTPException(404, str(e))
    return HTTPException(409 if isinstance(e, service.Conflict) else 422, str(e))


def token_read(row: service.TokenRow) -> TokenRead:
    t = row.token
    return TokenRead(
        id=t.id,
        user=row.user,
        name=t.name,
        prefix=t.prefix,
        state=row.state,
        created_at=t.created_at,
        expires_at=t.expires_at,
        last_used_at=t.last_used_at,
    )


@router.get("/users", response_model=list[UserListed])
async def list_users(session: SessionDep, _: Admin) -> list[UserListed]:
    rows = await session.run_sync(service.list_users)
    return [
        UserListed(**UserRead.model_validate(r.user).model_dump(), tokens=r.tokens) for r in rows
    ]


@router.post(
    "/users",
    response_model=UserCreated,
    status_code=201,
    responses={409: {"model": ErrorOut, "description": "a user with that name exists"}},
)
async def create_user(
    request: Request, body: UserCreate, session: SessionDep, principal: Admin
) -> UserCreated:
    try:
        new = await service.new_password(body.password)  # argon2 off the event loop
        user, password = await session.run_sync(
            service.create_user, body.name, body.role, new, principal, client_ip(request)
        )
    except service.UserError as e:
        raise _error(e) from None
    return UserCreated(**UserRead.model_validate(user).model_dump(), password=password)


@router.patch(
    "/users/{user_id}",
    response_model=UserRead,
    responses={409: {"model": ErrorOut, "description": "would leave no active admin"}},
)
async def update_user(
    request: Request, user_id: DbId, body: UserUpdate, session: SessionDep, principal: Admin
) -> UserRead:
    """Deactivate/activate and/or change the role; the user's sessions end either way."""
    ip = client_ip(request)
    try:
        user = await session.run_sync(service.get_user, user_id)
        if body.role is not None:
            user = await session.run_sync(service.set_role, user_id, body.role, principal, ip)
        if body.active is not None:
            user = await session.run_sync(service.set_active, user_id, body.active, principal, ip)
    except service.UserError as e:
        raise _error(e) from None
    return UserRead.model_validate(user)


@router.post("/users/{user_id}/password", response_model=PasswordOut)
async def set_password(
    request: Request, user_id: DbId, body: PasswordSet, session: SessionDep, principal: Admin
) -> PasswordOut:
    """Set or generate a new password; the user's sessions end."""
    try:
        new = await service.new_password(body.password)  # argon2 off the event loop
        user, password = await session.run_sync(
            service.set_password, user_id, new, principal, client_ip(request)
        )
    except service.UserError as e:
        raise _error(e) from None
    return PasswordOut(user=user.name, password=password)


@router.get("/tokens", response_model=list[TokenRead])
async def list_tokens(
    session: SessionDep,
    _: Admin,
    user: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> list[TokenRead]:
    """Every token (or one user's): prefix, state, expiry, last use; never the token itself."""
    if user is not None and has_nul(user):
        raise HTTPException(422, "user must not contain NUL characters")
    try:
        rows = await session.run_sync(service.list_tokens, user)
    except service.UserError as e:
        raise _error(e) from None
    return [token_read(r) for r in rows]


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=201,
    responses={404: {"model": ErrorOut, "description": "no user with that name"}},
)
async def create_token(
    request: Request, body: TokenCreate, session: SessionDep, principal: Admin
) -> TokenCreated:
    try:
        expiry = service.parse_duration(body.expires_in) if body.expires_in else None
        token, plain = await session.run_sync(
            service.create_token, body.user, body.name, principal, client_ip(request), expiry
        )
    except service.UserError as e:
        raise _error(e) from None
    return TokenCreated(
        id=token.id, user=body.user, name=token.name, token=plain, expires_at=token.expires_at
    )


@router.post("/tokens/{token_id}/revoke", response_model=TokenRead)
async def revoke_token(
    request: Request, token_id: DbId, session: SessionDep, principal: Admin
) -> TokenRead:
    """Revoke a token; its next request is refused (401)."""
    try:
        row = await session.run_sync(service.revoke_token, token_id, principal, client_ip(request))
    except service.UserError as e:
        raise _error(e) from None
    return token_read(row)
