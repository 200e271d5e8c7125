"""Accounts and API tokens. Sync functions; async routes call them through run_sync."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import record
from app.auth.security import generate_password, hash_password, hash_token, new_api_token
from app.models import ApiToken, Role, User


class UserError(ValueError):
    """A request about users that cannot be honoured (shown to the caller as-is)."""


def create_user(
    session: Session,
    name: str,
    role: Role | str,
    password: str | None = None,
    actor: Any = None,
    ip: str | None = None,
) -> tuple[User, str]:
    """Create an account; returns it with the password (generated when none is given).
    Audited as `actor` (a Principal; None: the command line), like every change here."""
    name = name.strip()
    if not name or len(name) > 100:
        raise UserError("name must be 1-100 characters")
    try:
        role = Role(role)
    except ValueError:
        raise UserError(f"role must be one of {', '.join(r.value for r in Role)}") from None
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise UserError(f"user {name!r} already exists")
    if password is not None and len(password) < 8:
        raise UserError("password must be at least 8 characters")
    password_given = password is not None
    password = password or generate_password()
    user = User(name=name, role=role, password_hash=hash_password(password), active=True)
    session.add(user)
    session.flush()
    details = {"role": role.value, "password": "given" if password_given else "generated"}
    record(session, actor, "user.create", name, details, ip)
    return user, password


def create_token(
    session: Session,
    user_name: str,
    token_name: str = "cli",
    actor: Any = None,
    ip: str | None = None,
) -> tuple[ApiToken, str]:
    """Create a personal API token for a user; the plain token is returned once, never stored."""
    user = session.scalar(select(User).where(User.name == user_name))
    if user is None:
        raise UserError(f"no user named {user_name!r}")
    plain = new_api_token()
    token = ApiToken(
        user_id=user.id, name=token_name[:100], token_hash=hash_token(plain), prefix=plain[:10]
    )
    session.add(token)
    session.flush()
    details = {"token_id": token.id, "name": token.name, "prefix": token.prefix}
    record(session, actor, "token.create", user.name, details, ip)
    return token, plain


def ensure_admin(session: Session, name: str = "admin") -> str | None:
    """Make sure an admin exists; returns the generated password when one was created."""
    if session.scalar(select(User.id).where(User.role == Role.admin).limit(1)) is not None:
        return None
    _, password = create_user(session, name, Role.admin)
    return password
