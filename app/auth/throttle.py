"""Login throttling per account name and per client address, with exponential backoff. The
state lives in the `login_throttle` table, so it holds across web processes and hosts.

After FREE failures (per account: LOGIN_FREE_FAILURES; per address: LOGIN_FREE_FAILURES_IP)
each further failure blocks that key for BASE * 2^(n - FREE) seconds, at most LOGIN_MAX_BLOCK_S.
A blocked key is answered 429 without even checking the password. Failures older than
LOGIN_WINDOW_S are forgotten; a successful login clears its account's count (not its address's:
one valid account must not reset an address that is guessing at others)."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from math import ceil

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.models import LoginThrottle, utcnow


def account_key(name: str) -> str:
    return "u:" + name.strip().casefold()[:150]


def address_key(ip: str | None) -> str:
    """IPv6 clients are counted per /64 (one host can hold a whole /64)."""
    if not ip:
        return "ip:unknown"
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return "ip:" + ip[:100]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped:
            return "ip:" + str(addr.ipv4_mapped)
        return "ip:" + str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return "ip:" + str(addr)


async def blocked_for(session: AsyncSession, keys: list[str]) -> int:
    """Seconds until every key may try again (0: not blocked)."""
    now = utcnow()
    until = await session.scalars(
        select(LoginThrottle.blocked_until).where(
            LoginThrottle.key.in_(keys), LoginThrottle.blocked_until > now
        )
    )
    latest = max((u for u in until if u is not None), default=None)
    return ceil((latest - now).total_seconds()) if latest else 0


def _block(failures: int, free: int) -> timedelta | None:
    s = get_settings()
    if failures <= free:
        return None
    seconds = s.login_backoff_base_s * 2 ** min(failures - free - 1, 30)
    return timedelta(seconds=min(seconds, s.login_max_block_s))


async def failed(session: AsyncSession, account: str, address: str) -> int:
    """Count one failure for both keys (atomically, whatever other processes do); returns the
    seconds the account or address is now blocked for."""
    s = get_settings()
    now = utcnow()
    stale = now - timedelta(seconds=s.login_window_s)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    block = 0
    for key, free in ((account, s.login_free_failures), (address, s.login_free_failures_ip)):
        new = insert(LoginThrottle).values(key=key, failures=1, updated_at=now)
        t = LoginThrottle.__table__.c
        stmt = new.on_conflict_do_update(
            index_elements=["key"],
            set_={
                # a count older than the window starts again (unless still blocked)
                "failures": _restart_or_add(t, stale, now),
                "updated_at": now,
            },
        ).returning(t.failures)
        failures = (await session.execute(stmt)).scalar_one()
        wait = _block(failures, free)
        if wait:
            await session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key == key)
                .values(blocked_until=now + wait)
            )
            block = max(block, ceil(wait.total_seconds()))
    # forget keys idle for a day (the table stays small)
    await session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.updated_at < now - timedelta(days=1),
            or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until < now),
        )
    )
    return block


def _restart_or_add(t, stale: datetime, now: datetime):
    from sqlalchemy import case

    expired = (t.updated_at < stale) & (or_(t.blocked_until.is_(None), t.blocked_until < now))
    return case((expired, 1), else_=t.failures + 1)


async def succeeded(session: AsyncSession, account: str) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == account))
