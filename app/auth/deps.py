"""Who is calling: bearer token or session cookie; every route declares the roles it admits."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.security import hash_token, new_csrf_token
from app.config import get_settings
from app.models import ApiToken, Role, User, utcnow

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Principal:
    user_id: int
    name: str
    role: Role
    via: str  # "token" | "session"
    auth_version: int = 0  # users.auth_version when this principal was looked up


class _AuthCache:
    """Short-lived cache of token/session lookups so the labeling hot path skips a query."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, Principal | None]] = {}

    def get(self, key: str) -> tuple[bool, Principal | None]:
        hit = self._items.get(key)
        if hit and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    def put(self, key: str, value: Principal | None, max_s: float | None = None) -> None:
        """Cache for AUTH_CACHE_SECONDS, or less (`max_s`: a token expiring sooner)."""
        if len(self._items) > 10_000:
            self._items.clear()
        ttl = get_settings().auth_cache_seconds
        if max_s is not None:
            ttl = max(0.0, min(ttl, max_s))
        self._items[key] = (time.monotonic() + ttl, value)

    def clear(self) -> None:
        self._items.clear()

    def forget_user(self, user_id: int) -> None:
        """Drop every cached lookup for one user (their credentials changed)."""
        stale = [k for k, (_, p) in self._items.items() if p is not None and p.user_id == user_id]
        for key in stale:
            self._items.pop(key, None)


auth_cache = _AuthCache()


async def get_db(request: Request):
    from app.db import session_from

    async for session in session_from(request.app.state.sessionmaker):
        yield session


# scope="function": commit before the response is sent, so a 2xx always means "stored" (the
# default "request" scope would commit after the client has already been acknowledged)
SessionDep = Annotated[AsyncSession, Depends(get_db, scope="function")]


async def _still_current(session: AsyncSession, principal: Principal) -> bool:
    """One indexed read: has anything about the user's credentials changed since `principal`
    was cached (auth_version is bumped by logout, password/role change, deactivation and token
    revocation)? Routes off the hot path pay this instead of trusting the cache."""
    row = (
        await session.execute(
            select(User.auth_version, User.active).where(User.id == principal.user_id)
        )
    ).first()
    return row is not None and row[0] == principal.auth_version and bool(row[1])


async def _from_token(session: AsyncSession, token: str, verify: bool) -> Principal | None:
    key = "t:" + hash_token(token)
    found, principal = auth_cache.get(key)
    if found and principal and (not verify or await _still_current(session, principal)):
        return principal
    if found and principal:
        auth_cache.forget_user(principal.user_id)
    now = utcnow()
    row = (
        await session.execute(
            select(
                User.id, User.name, User.role, ApiToken.id, User.auth_version, ApiToken.expires_at
            )
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(
                ApiToken.token_hash == key[2:],
                ~ApiToken.revoked,
                User.active,
                or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now),
            )
        )
    ).first()
    principal = Principal(row[0], row[1], Role(row[2]), "token", row[4]) if row else None
    expires_in = None
    if row:
        await session.execute(
            update(ApiToken).where(ApiToken.id == row[3]).values(last_used_at=now)
        )
        if row[5] is not None:
            expires_in = (row[5] - now).total_seconds()
    if principal is not None:  # a refusal is not cached: reactivation holds at once too
        auth_cache.put(key, principal, expires_in)
    return principal


async def _from_session(
    session: AsyncSession, user_id: int, generation: int, verify: bool
) -> Principal | None:
    """The cookie's user, if its session generation is still the user's (logout, password or
    role change and deactivation bump it, ending every earlier session)."""
    key = f"s:{user_id}:{generation}"
    found, principal = auth_cache.get(key)
    if found and principal and (not verify or await _still_current(session, principal)):
        return principal
    if found:
        auth_cache.forget_user(user_id)
    user = await session.get(User, user_id, populate_existing=True)
    principal = (
        Principal(user.id, user.name, Role(user.role), "session", user.auth_version)
        if user and user.active and user.session_generation == generation
        else None
    )
    if principal is not None:
        auth_cache.put(key, principal)
    return principal


def start_session(request: Request, user: User) -> None:
    """A fresh signed session for `user` (called after a successful login)."""
    request.session.clear()
    request.session.update(
        {
            "uid": user.id,
            "gen": user.session_generation,
            "csrf": new_csrf_token(),
            "seen": int(time.time()),
        }
    )


def _idle(request: Request) -> bool:
    """Past the idle timeout? Otherwise note the activity (at most once a minute: the signed
    cookie is re-sent anyway; this keeps it from changing on every request)."""
    limit = get_settings().session_idle_timeout_s
    now = int(time.time())
    seen = request.session.get("seen")
    if not isinstance(seen, int):
        seen = 0
    if limit and now - seen > limit:
        return True
    if now - seen >= 60:
        request.session["seen"] = now
    return False


def check_csrf(request: Request, supplied: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not supplied or not hmac.compare_digest(expected, supplied):
        raise HTTPException(403, "CSRF token missing or invalid; reload the page and try again")


async def _resolve(request: Request, session: AsyncSession, verify: bool) -> Principal | None:
    """The caller from a bearer token or the session cookie. verify=False (the hot path only)
    trusts the auth cache; the route's own statement then checks auth_version."""
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "Authorization header must be 'Bearer <token>'")
        principal = await _from_token(session, token.strip(), verify)
        if principal is None:
            raise HTTPException(401, "invalid, expired or revoked API token")
        return principal
    uid = request.session.get("uid") if "session" in request.scope else None
    gen = request.session.get("gen")
    if not isinstance(uid, int) or not isinstance(gen, int) or _idle(request):
        if uid is not None:
            request.session.clear()
        return None
    principal = await _from_session(session, uid, gen, verify)
    if principal is None:
        request.session.clear()
        return None
    # cookie-authenticated JSON writes need the CSRF header; HTML form posts check their field
    if request.method not in SAFE_METHODS and request.url.path.startswith(("/api/", "/v1/")):
        check_csrf(request, request.headers.get(CSRF_HEADER))
    return principal


async def optional_principal(request: Request, session: SessionDep) -> Principal | None:
    principal = await _resolve(request, session, verify=True)
    # end the lookup's transaction: the route may read an upload or load a model next, and no
    # request may hold a (SQLite: writer) lock across that
    if session.in_transaction():
        await session.commit()
    return principal


def require_role(*roles: Role):
    """Dependency admitting only the given roles (admin always admitted)."""
    allowed = frozenset(roles) | {Role.admin}

    async def dependency(
        request: Request,
        principal: Annotated[Principal | None, Depends(optional_principal)],
    ) -> Principal:
        if principal is None:
            raise HTTPException(401, "authentication required", {"WWW-Authenticate": "Bearer"})
        if principal.role not in allowed:
            raise HTTPException(403, f"this route needs role {' or '.join(sorted(allowed))}")
        request.state.principal = principal  # pages render the signed-in user from here
        return principal

    dependency.roles = allowed  # type: ignore[attr-defined]  # read by the route x role test
    return dependency


def public() -> None:
    """Marker dependency for routes anyone may call."""


public.roles = frozenset({"public"})  # type: ignore[attr-defined]  # as above


class _LazySession:
    """Stands in for the request's session: opens a real one only if authentication has to look
    something up (a cache miss), so a cached principal costs no session and no query."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self.session: AsyncSession | None = None

    def __getattr__(self, name: str):
        if self.session is None:
            self.session = self._request.app.state.sessionmaker()
        return getattr(self.session, name)


async def _authenticate(request: Request, allowed: frozenset[Role]) -> Principal:
    """optional_principal + the role check, with a session opened (and committed) only when
    the cache misses."""
    lazy = _LazySession(request)
    try:
        principal = await _resolve(request, cast(AsyncSession, lazy), verify=False)
        if lazy.session is not None:
            await lazy.session.commit()
    finally:
        if lazy.session is not None:
            await lazy.session.close()
    if principal is None:
        raise HTTPException(401, "authentication required", {"WWW-Authenticate": "Bearer"})
    if principal.role not in allowed:
        raise HTTPException(403, f"this route needs role {' or '.join(sorted(allowed))}")
    return principal


def require_role_hot(*roles: Role):
    """require_role for the hot path: no database session unless the auth cache misses. The
    route must check principal.auth_version inside its own statement and, on a mismatch, call
    `reauthenticate`."""
    allowed = frozenset(roles) | {Role.admin}

    async def dependency(request: Request) -> Principal:
        principal = await _authenticate(request, allowed)
        request.state.principal = principal
        request.state.allowed_roles = allowed
        return principal

    dependency.roles = allowed  # type: ignore[attr-defined]  # read by the route x role test
    return dependency


async def reauthenticate(request: Request, stale: Principal) -> Principal:
    """The statement saw a newer users.auth_version (or an inactive user) than the cached
    principal: forget the user's cached lookups and authenticate the normal way once more
    (401/403 if the credential no longer admits the caller)."""
    auth_cache.forget_user(stale.user_id)
    principal = await _authenticate(request, request.state.allowed_roles)
    request.state.principal = principal
    return principal


Labeler = Annotated[Principal, Depends(require_role(Role.labeler))]
# The labeling hot path: the same check without a session per request; the route verifies
# principal.auth_version against users.auth_version inside its own statement and calls
# reauthenticate (auth_cache.forget_user + a fresh lookup) on a mismatch.
LabelerHot = Annotated[Principal, Depends(require_role_hot(Role.labeler))]
Admin = Annotated[Principal, Depends(require_role(Role.admin))]
Researcher = Annotated[Principal, Depends(require_role(Role.researcher))]
AnyUser = Annotated[Principal, Depends(require_role(Role.labeler, Role.researcher))]
