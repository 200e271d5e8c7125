"""Account and token administration (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import select

from app.audit import client_ip
from app.auth.deps import Admin, SessionDep
from app.models import User
from app.ops.errors import API_ERRORS, ErrorOut
from app.users import service
from app.users.schemas import TokenCreate, TokenCreated, UserCreate, UserCreated, UserRead

router = APIRouter(prefix="/api/v1", tags=["users"], responses=API_ERRORS)


@router.get("/users", response_model=list[UserRead])
async def list_users(session: SessionDep, _: Admin) -> list[User]:
    return list((await session.scalars(select(User).order_by(User.id))).all())


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
        user, password = await session.run_sync(
            service.create_user, body.name, body.role, body.password, principal, client_ip(request)
        )
    except service.UserError as e:
        raise HTTPException(409 if "exists" in str(e) else 422, str(e)) from None
    return UserCreated(**UserRead.model_validate(user).model_dump(), password=password)


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
        token, plain = await session.run_sync(
            service.create_token, body.user, body.name, principal, client_ip(request)
        )
    except service.UserError as e:
        raise HTTPException(404, str(e)) from None
    return TokenCreated(id=token.id, user=body.user, name=token.name, token=plain)
