"""Point 3 of issue 11: login throttling per account and per address with backoff, its state in
the database (shared by processes), a dummy hash for unknown names, argon2 off the event loop."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from argon2 import extract_parameters
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.auth import security
from app.auth.throttle import account_key, address_key
from app.db import session_scope
from app.main import create_app
from app.models import LoginThrottle, User, utcnow
from tests.factories import make_user


def _try(client, name: str, password: str):  # type: ignore[no-untyped-def]
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": csrf},
        follow_redirects=False,
    )


def _rows() -> dict[str, LoginThrottle]:
    with session_scope() as s:
        return {r.key: r for r in s.scalars(select(LoginThrottle))}


def _unblock() -> None:
    """What waiting out the block does, without waiting."""
    with session_scope() as s:
        s.execute(update(LoginThrottle).values(blocked_until=utcnow() - timedelta(seconds=1)))


def test_account_is_throttled_with_backoff_then_recovers(client):
    make_user("alice")
    for _ in range(5):  # LOGIN_FREE_FAILURES
        assert _try(client, "alice", "wrong-password").status_code == 401
    r = _try(client, "alice", "wrong-password")
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert "Too many failed logins" in r.text
    # while blocked, even the right password is not checked
    r = _try(client, "alice", "password123")
    assert r.status_code == 429
    # each further failure doubles the block
    waits = []
    for _ in range(3):
        _unblock()
        r = _try(client, "alice", "wrong-password")
        waits.append(int(r.headers["retry-after"]))
    assert waits == [2, 4, 8]
    row = _rows()[account_key("alice")]
    assert row.failures == 9 and row.blocked_until > utcnow() + timedelta(seconds=7)
    _unblock()
    assert _try(client, "alice", "password123").status_code == 303
    assert account_key("alice") not in _rows()  # a success clears the account's count


def test_unknown_names_are_throttled_alike_and_hashed_alike(client, monkeypatch):
    make_user("alice")
    checked: list[str] = []
    real = security.verify_password

    def spy(password_hash: str, password: str) -> bool:
        checked.append(password_hash)
        try:  # argon2 runs in a worker thread, never on the event loop
            asyncio.get_running_loop()
            raise AssertionError("argon2 ran on the event loop")
        except RuntimeError:
            pass
        return real(password_hash, password)

    monkeypatch.setattr(security, "verify_password", spy)
    assert _try(client, "nobody", "whatever-pass").status_code == 401
    assert _try(client, "alice", "whatever-pass").status_code == 401
    with session_scope() as s:
        alice_hash = s.scalar(select(User.password_hash).where(User.name == "alice"))
    assert checked == [security.DUMMY_HASH, alice_hash]
    # same argon2 cost for the dummy as for real accounts
    assert extract_parameters(security.DUMMY_HASH) == extract_parameters(alice_hash)
    for _ in range(4):
        _try(client, "nobody", "whatever-pass")
    assert _try(client, "nobody", "whatever-pass").status_code == 429


def test_an_address_guessing_many_names_is_throttled(client):
    make_user("alice")
    for i in range(20):  # LOGIN_FREE_FAILURES_IP, spread over names
        assert _try(client, f"user{i}", "wrong-password").status_code == 401
    assert _try(client, "user-new", "wrong-password").status_code == 429
    # the address is blocked: a correct login from it waits too
    assert _try(client, "alice", "password123").status_code == 429
    assert _rows()[address_key("testclient")].failures == 21


def test_state_is_shared_between_processes():
    """Two app instances (as two web processes) share nothing in memory: failures add up."""
    make_user("alice")
    with TestClient(create_app()) as a, TestClient(create_app()) as b:
        for i in range(5):
            assert _try(a if i % 2 else b, "alice", "wrong-password").status_code == 401
        assert _try(a, "alice", "wrong-password").status_code == 429
        assert _try(b, "alice", "password123").status_code == 429


def test_old_failures_are_forgotten(client):
    make_user("alice")
    for _ in range(4):
        _try(client, "alice", "wrong-password")
    with session_scope() as s:  # the last failure was longer ago than LOGIN_WINDOW_S
        s.execute(update(LoginThrottle).values(updated_at=utcnow() - timedelta(minutes=16)))
    assert _try(client, "alice", "wrong-password").status_code == 401
    assert _rows()[account_key("alice")].failures == 1


def test_address_keys():
    assert address_key("203.0.113.9") == "ip:203.0.113.9"
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff") == "ip:2001:db8::/64"
    assert address_key("::ffff:203.0.113.9") == "ip:203.0.113.9"
    assert address_key(None) == "ip:unknown"
    assert account_key(" Alice ") == account_key("alice")
