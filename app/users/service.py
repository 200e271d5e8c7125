"""Accounts and API tokens. Sync functions; async routes call them through run_sync.

Every change is audited as `actor` (a Principal; None: the command line) from `ip`, and every
change that takes access away bumps the user's counters: `session_generation` ends their browser
sessions, `auth_version` makes every cached credential of theirs be looked up again (the
labeling hot path compares it inside its own statement), so it holds on the next request."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.audit import record
from app.auth.security import generate_password, hash_password, hash_token, new_api_token
from app.models import ApiToken, Role, User, utcnow
from ml.limits import INT32_MAX, has_nul

MIN_PASSWORD = 8
MAX_EXPIRY = timedelta(days=3650)


class UserError(ValueError):
    """A request about users that cannot be honoured (shown to the caller as-is)."""


class NotFound(UserError):
    """No such user or token."""


class Conflict(UserError):
    """Not possible in the current state (name taken, last active admin)."""


def _forget(user_id: int) -> None:
    # this process's cached lookups go at once; other processes re-check auth_version
    from app.auth.deps import auth_cache

    auth_cache.forget_user(user_id)


def end_sessions(user: User) -> None:
    """Invalidate every browser session and cached credential of `user` (flushed by the caller)."""
    user.session_generation = (user.session_generation or 0) + 1
    user.auth_version = (user.auth_version or 0) + 1
    _forget(user.id)


@dataclass(frozen=True)
class NewPassword:
    """A password with its argon2 hash, made before the database work (the web routes make it
    in a worker thread: hashing takes ~100 ms of CPU and must not hold the event loop)."""

    plain: str
    hash: str
    generated: bool

    @classmethod
    def make(cls, password: str | None) -> NewPassword:
        if password is not None:
            _check_password(password)
        plain = password or generate_password()
        return cls(plain, hash_password(plain), password is None)


async def new_password(password: str | None) -> NewPassword:
    """NewPassword.make off the event loop (UserError for a password that is not allowed)."""
    import anyio.to_thread

    return await anyio.to_thread.run_sync(NewPassword.make, password)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > 200 or has_nul(password):
        raise UserError("password must be at most 200 characters, without NUL")


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise UserError(f"role must be one of {', '.join(r.value for r in Role)}") from None


def create_user(
    session: Session,
    name: str,
    role: Role | str,
    password: str | NewPassword | None = None,
    actor: Any = None,
    ip: str | None = None,
) -> tuple[User, str]:
    """Create an account; returns it with the password (generated when none is given)."""
    name = name.strip()
    if not name or len(name) > 100 or has_nul(name):
        raise UserError("name must be 1-100 characters, without NUL")
    role = _role(role)
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    new = password if isinstance(password, NewPassword) else NewPassword.make(password)
    user = User(name=name, role=role, password_hash=new.hash, active=True)
    session.add(user)
    session.flush()
    details = {"role": role.value, "password": "generated" if new.generated else "given"}
    record(session, actor, "user.create", name, details, ip)
    return user, new.plain


def get_user(session: Session, ref: int | str) -> User:
    """A user by id or by name."""
    user = session.get(User, ref) if isinstance(ref, int) else None
    if user is None and isinstance(ref, str):
        user = session.scalar(select(User).where(User.name == ref))
    if user is None:
        raise NotFound(f"no user {ref!r}")
    return user


@dataclass
class UserRow:
    user: User
    tokens: int  # live tokens (not revoked, not expired)


def list_users(session: Session) -> list[UserRow]:
    now = utcnow()
    live = (
        select(ApiToken.user_id, func.count().label("n"))
        .where(~ApiToken.revoked, (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now))
        .group_by(ApiToken.user_id)
        .subquery()
    )
    rows = session.execute(
        select(User, func.coalesce(live.c.n, 0)).outerjoin(live, live.c.user_id == User.id)
        .order_by(User.id)
    ).all()  # fmt: skip
    return [UserRow(u, int(n)) for u, n in rows]


def _other_active_admins(session: Session, user: User) -> int:
    return (
        session.scalar(
            select(func.count()).where(User.role == Role.admin, User.active, User.id != user.id)
        )
        or 0
    )


def set_active(
    session: Session, ref: int | str, active: bool, actor: Any = None, ip: str | None = None
) -> User:
    """Deactivate (ends every session, every token stops working) or reactivate an account."""
    user = get_user(session, ref)
    if user.active == active:
        return user
    if not active and user.role == Role.admin and not _other_active_admins(session, user):
        raise Conflict("cannot deactivate the last active admin")
    user.active = active
    end_sessions(user)
    session.flush()
    record(session, actor, "user.activate" if active else "user.deactivate", user.name, {}, ip)
    return user


def set_role(
    session: Session, ref: int | str, role: Role | str, actor: Any = None, ip: str | None = None
) -> User:
    user = get_user(session, ref)
    role = _role(role)
    if user.role == role:
        return user
    if user.role == Role.admin and user.active and not _other_active_admins(session, user):
        raise Conflict("cannot take the admin role from the last active admin")
    before = Role(user.role).value
    user.role = role
    end_sessions(user)
    session.flush()
    record(session, actor, "user.set_role", user.name, {"from": before, "to": role.value}, ip)
    return user


def set_password(
    session: Session,
    ref: int | str,
    password: str | NewPassword | None = None,
    actor: Any = None,
    ip: str | None = None,
) -> tuple[User, str]:
    """Set (or generate) a new password; the user's sessions end. Returns the password."""
    user = get_user(session, ref)
    new = password if isinstance(password, NewPassword) else NewPassword.make(password)
    user.password_hash = new.hash
    end_sessions(user)
    session.flush()
    details = {"password": "generated" if new.generated else "given"}
    record(session, actor, "user.set_password", user.name, details, ip)
    return user, new.plain


def logout(session: Session, user_id: int, generation: int) -> None:
    """End the user's sessions, if the cookie logging out is still a current one."""
    session.execute(
        update(User)
        .where(User.id == user_id, User.session_generation == generation)
        .values(session_generation=User.session_generation + 1, auth_version=User.auth_version + 1)
    )
    _forget(user_id)


_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw]?)\s*$")
_UNITS = {"s": 1, "": 86400, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """'90d', '12h', '30m', '2w', '45s' (a bare number means days)."""
    m = _DURATION.match(text)
    if not m:
        raise UserError(f"expiry {text!r} must look like 30d, 12h, 90m or 2w")
    delta = timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    if delta <= timedelta(0) or delta > MAX_EXPIRY:
        raise UserError("expiry must be between 1 second and 10 years")
    return delta


def create_token(
    session: Session,
    user_name: str,
    token_name: str = "cli",
    actor: Any = None,
    ip: str | None = None,
    expires_in: timedelta | None = None,
) -> tuple[ApiToken, str]:
    """Create a personal API token for a user; the plain token is returned once, never stored."""
    user = session.scalar(select(User).where(User.name == user_name))
    if user is None:
        raise NotFound(f"no user named {user_name!r}")
    plain = new_api_token()
    token = ApiToken(
        user_id=user.id,
        name=token_name[:100],
        token_hash=hash_token(plain),
        prefix=plain[:10],
        expires_at=utcnow() + expires_in if expires_in else None,
    )
    session.add(token)
    session.flush()
    details: dict[str, Any] = {"token_id": token.id, "name": token.name, "prefix": token.prefix}
    if token.expires_at:
        details["expires_at"] = token.expires_at
    record(session, actor, "token.create", user.name, details, ip)
    return token, plain


@dataclass
class TokenRow:
    token: ApiToken
    user: str

    @property
    def state(self) -> str:
        if self.token.revoked:
            return "revoked"
        if self.token.expires_at and self.token.expires_at <= utcnow():
            return "expired"
        return "active"


def list_tokens(session: Session, user: int | str | None = None) -> list[TokenRow]:
    q = select(ApiToken, User.name).join(User, User.id == ApiToken.user_id)
    if user is not None:
        q = q.where(ApiToken.user_id == get_user(session, user).id)
    return [TokenRow(t, n) for t, n in session.execute(q.order_by(ApiToken.id))]


def revoke_token(
    session: Session, ref: int | str, actor: Any = None, ip: str | None = None
) -> TokenRow:
    """Revoke a token by id or by its shown prefix; refused on the next request it makes."""
    if isinstance(ref, int) or ref.isdigit():
        token = session.get(ApiToken, int(ref)) if int(ref) <= INT32_MAX else None
    else:
        found = list(session.scalars(select(ApiToken).where(ApiToken.prefix == ref)))
        if len(found) > 1:
            raise UserError(f"prefix {ref!r} names {len(found)} tokens; use the id")
        token = found[0] if found else None
    if token is None:
        raise NotFound(f"no token {ref!r}")
    owner = session.get_one(User, token.user_id)
    if not token.revoked:
        token.revoked = True
        owner.auth_version = (owner.auth_version or 0) + 1
        session.flush()
        _forget(owner.id)
        details = {"token_id": token.id, "name": token.name, "prefix": token.prefix}
        record(session, actor, "token.revoke", owner.name, details, ip)
    return TokenRow(token, owner.name)


def ensure_admin(session: Session, name: str = "admin") -> str | None:
    """Make sure an admin exists; returns the generated password when one was created."""
    if session.scalar(select(User.id).where(User.role == Role.admin).limit(1)) is not None:
        return None
    _, password = create_user(session, name, Role.admin)
    return password
