"""Point 4 of issue 11: sessions end on the server. Logout, password change, role change and
deactivation bump the user's session generation, so a copied cookie stops working (on the hot
path too, and in every web process); an idle session expires."""

from __future__ import annotations

import base64
import json
import os
import re
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner

from app.main import create_app
from tests.conftest import LiveServer
from tests.factories import auth, make_tasks, make_user

HTML = {"accept": "text/html"}


def login(client, name: str, password: str = "password123") -> str:  # type: ignore[no-untyped-def]
    """Log in through the form; returns the session's CSRF token."""
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return _payload(client.cookies["prefloop_session"])["csrf"]


def _payload(cookie: str) -> dict:
    return json.loads(base64.b64decode(cookie.rsplit(".", 2)[0] + "=="))


def _replay(cookie: str, path: str = "/api/v1/me", **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
    """The request a thief holding a copy of the cookie makes, from another browser."""
    with TestClient(create_app()) as thief:
        thief.cookies.set("prefloop_session", cookie)
        return thief.get(path, follow_redirects=False, **kw)


def _logout(client, csrf: str) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_replayed_cookie_after_logout_is_refused(client):
    make_user("alice")
    make_tasks(2)
    csrf = login(client, "alice")
    copied = client.cookies["prefloop_session"]
    assert _replay(copied).json()["name"] == "alice"
    # the hot path caches the cookie's principal
    assert client.get("/api/v1/tasks/next").status_code == 200
    _logout(client, csrf)
    assert _replay(copied).status_code == 401
    assert _replay(copied, "/api/v1/tasks/next").status_code == 401
    page = _replay(copied, "/label", headers=HTML)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    # logging in again works, with a new session
    login(client, "alice")
    assert client.get("/api/v1/me").json()["name"] == "alice"
    assert _replay(copied).status_code == 401


def test_logout_holds_in_every_web_process():
    """Two uvicorn workers, each with its own auth cache: the copied cookie is refused by both."""
    make_user("alice")
    make_tasks(2)
    server = LiveServer(workers=2)
    server.start()
    try:
        with httpx.Client(base_url=server.url) as c:
            login(c, "alice")
            copied = c.cookies["prefloop_session"]
            csrf = _payload(copied)["csrf"]
            cookies = {"prefloop_session": copied}
            for _ in range(12):  # warm both workers' caches (connections spread over workers)
                with httpx.Client(base_url=server.url, cookies=cookies) as other:
                    assert other.get("/api/v1/me").status_code == 200
                    assert other.get("/api/v1/tasks/next").status_code == 200
            r = c.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
            assert r.status_code == 303
        for _ in range(12):
            with httpx.Client(base_url=server.url, cookies=cookies) as thief:
                assert thief.get("/api/v1/me").status_code == 401
                assert thief.get("/api/v1/tasks/next").status_code == 401
    finally:
        server.stop()


@pytest.mark.parametrize(
    "change",
    [
        ("post", "/api/v1/users/{id}/password", {}),
        ("patch", "/api/v1/users/{id}", {"role": "researcher"}),
        ("patch", "/api/v1/users/{id}", {"active": False}),
    ],
    ids=["password", "role", "deactivate"],
)
def test_account_changes_end_sessions(client, change):
    admin = make_user("boss", "admin")
    make_user("alice")
    login(client, "alice")
    copied = client.cookies["prefloop_session"]
    uid = _replay(copied).json()["id"]
    method, path, body = change
    r = getattr(client, method)(path.format(id=uid), json=body, headers=auth(admin))
    assert r.status_code == 200, r.text
    assert _replay(copied).status_code == 401


def _resign(cookie: str, **changes) -> str:  # type: ignore[no-untyped-def]
    """The cookie with changed contents, signed with the test server's key."""
    data = {**_payload(cookie), **changes}
    raw = base64.b64encode(json.dumps(data).encode())
    return TimestampSigner(os.environ["PREFLOOP_SECRET_KEY"]).sign(raw).decode()


def test_idle_session_expires(client):
    make_user("alice")
    login(client, "alice")
    cookie = client.cookies["prefloop_session"]
    seen = _payload(cookie)["seen"]
    recent = _resign(cookie, seen=seen - 3600)
    assert _replay(recent).status_code == 200  # an hour idle: still signed in
    idle = _resign(cookie, seen=int(time.time()) - 8 * 3600 - 5)  # the default: 8 hours
    assert _replay(idle).status_code == 401
    assert _replay(_resign(cookie, gen=None)).status_code == 401  # cookies from before
