"""Security headers on every kind of response (pages, JSON, errors, static files, 413)."""

from __future__ import annotations

from app.ops.headers import CSP, SecurityHeadersMiddleware, security_headers
from tests.factories import auth, make_user


def _check(r) -> None:  # type: ignore[no-untyped-def]
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in r.headers  # not in development


def test_every_response_carries_the_headers(client):
    token = make_user("boss", "admin")
    for r in [
        client.get("/login"),
        client.get("/api/v1/me", headers=auth(token)),
        client.get("/api/v1/me"),  # 401
        client.get("/no/such/page"),  # 404
        client.get("/static/app.css"),
        client.post("/api/v1/tasks/1/skip", content=b"x" * 2_000_000, headers=auth(token)),  # 413
        client.get("/healthz"),
    ]:
        _check(r)
    assert "'unsafe-inline'" not in CSP and "frame-ancestors 'none'" in CSP
    docs = client.get("/docs")
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]


def test_production_adds_hsts():
    names = dict(security_headers(production=True))
    assert names[b"strict-transport-security"].startswith(b"max-age=")
    assert SecurityHeadersMiddleware(lambda *a: None, production=False).headers == security_headers(
        False
    )
