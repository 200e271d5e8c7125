"""Every route declares its roles, and the roles hold: a walk of every route x role."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from app.config import Settings
from app.main import _routers
from tests.factories import auth, make_user

ROLES = ("labeler", "researcher", "admin")


def _declared_roles(route: APIRoute) -> frozenset[str]:
    found: set[str] = set()
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        roles = getattr(dep.call, "roles", None)
        if roles:
            found |= {str(getattr(r, "value", r)) for r in roles}
        stack.extend(dep.dependencies)
    return frozenset(found)


def _routes() -> list[tuple[APIRoute, str]]:
    """Every (route, method) of every domain router the app includes (without a prefix)."""
    out = []
    for router in _routers():
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            for method in sorted(route.methods - {"HEAD"}):
                out.append((route, method))
    return out


def _fill(path: str) -> str:
    path = path.replace("{kind}", "prompts")
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_declares_a_role():
    missing = [f"{m} {r.path}" for r, m in _routes() if not _declared_roles(r)]
    assert not missing, f"routes without a role dependency: {missing}"


def test_route_role_matrix(client):
    # paths are filled with id 1: let it be a spare account, so that the walk's revocations,
    # password resets and deactivations do not hit the callers' own credentials
    make_user("spare")
    tokens = {role: make_user(f"user-{role}", role) for role in ROLES}
    checked = 0
    for route, method in _routes():
        roles = _declared_roles(route)
        url = _fill(route.path)
        anon = client.request(method, url, follow_redirects=False, headers={"accept": "text/html"})
        if "public" in roles:
            refused = anon.status_code in (401, 403) and "CSRF" not in anon.text
            assert not refused and anon.status_code < 500, (method, url)
            continue
        assert anon.status_code in (401, 303), (method, url, anon.status_code)
        if anon.status_code == 303:
            assert anon.headers["location"].startswith("/login")
        for role in ROLES:
            r = client.request(method, url, headers=auth(tokens[role]), follow_redirects=False)
            assert r.status_code < 500, (method, url, role, r.status_code, r.text[:300])
            if role in roles:
                # a form post refused for its missing CSRF field got past the role check
                csrf_refusal = r.status_code == 403 and "CSRF" in r.text
                assert csrf_refusal or r.status_code not in (401, 403), (method, url, role, r.text)
            else:
                assert r.status_code == 403, (method, url, role, r.status_code)
            checked += 1
    assert checked > 20


def test_labelers_cannot_reach_admin_or_export_routes(client):
    labeler = make_user("lab")
    guarded = [
        (r, m)
        for r, m in _routes()
        if "labeler" not in _declared_roles(r) and "public" not in _declared_roles(r)
    ]
    assert any("/users" in r.path for r, _ in guarded)
    for route, method in guarded:
        r = client.request(method, _fill(route.path), headers=auth(labeler))
        assert r.status_code == 403, (method, route.path)


def _login(client, name: str, password: str = "password123"):  # type: ignore[no-untyped-def]
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


def test_session_cookie_flags_and_login(client):
    make_user("alice")
    bad = _login(client, "alice", "wrong-password")
    assert bad.status_code == 401 and "Wrong name or password" in bad.text
    r = _login(client, "alice")
    assert r.status_code == 303 and r.headers["location"] == "/label"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert client.get("/api/v1/me").json()["name"] == "alice"


def test_csrf_required_for_form_posts_and_cookie_writes(client):
    make_user("alice")
    client.get("/login")
    r = client.post("/login", data={"name": "alice", "password": "password123"})
    assert r.status_code == 403 and "CSRF" in r.text
    assert _login(client, "alice").status_code == 303
    # cookie-authenticated JSON write without the header
    r = client.post("/api/v1/tasks/1/skip", json={"reason": ""})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = client.post("/logout", data={}, follow_redirects=False)
    assert r.status_code == 403


def test_production_refuses_default_secret():
    with pytest.raises(ValueError, match="PREFLOOP_SECRET_KEY"):
        Settings(env="production", secret_key="dev-insecure-secret-change-me")
    assert Settings(env="production", secret_key="x" * 40).secret_key == "x" * 40


def test_request_size_limit(client):
    token = make_user("alice")
    r = client.post(
        "/api/v1/tasks/1/judgments",
        content=b"x" * 2_000_000,
        headers={**auth(token), "content-type": "application/json"},
    )
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


def test_bad_auth_headers(client):
    assert client.get("/api/v1/me", headers={"authorization": "Basic abc"}).status_code == 401
    assert client.get("/api/v1/me", headers=auth("pfl_nope")).status_code == 401


def test_users_and_tokens_api(client):
    admin = make_user("root", "admin")
    r = client.post(
        "/api/v1/users", json={"name": "bob", "role": "researcher"}, headers=auth(admin)
    )
    assert r.status_code == 201 and len(r.json()["password"]) >= 12
    assert (
        client.post(
            "/api/v1/users", json={"name": "bob", "role": "labeler"}, headers=auth(admin)
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/v1/users", json={"name": "x", "role": "boss"}, headers=auth(admin)
        ).status_code
        == 422
    )
    r = client.post("/api/v1/tokens", json={"user": "bob"}, headers=auth(admin))
    assert r.status_code == 201
    assert client.get("/api/v1/me", headers=auth(r.json()["token"])).json()["role"] == "researcher"
    assert (
        client.post("/api/v1/tokens", json={"user": "ghost"}, headers=auth(admin)).status_code
        == 404
    )


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
