"""/admin/webhooks as an admin and as a hostile user: URL rules, limits, roles, CSRF, escaping,
and a secret that is shown exactly once."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.db import session_scope
from app.models import WebhookDelivery, WebhookEndpoint
from app.webhooks import service
from app.webhooks.urls import BadUrl, check_url
from tests.factories import auth, make_user
from tests.serving.support import settings_env

PAGE = "/admin/webhooks"


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert m
    return m.group(1)


def _endpoints() -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/x",
        "javascript:alert(1)",
        "https://",
        "https://user:pw@example.com/hook",
        "https://example.com/a b",
        "https://example.com/\x00",
        "https://example.com/#frag",
        "https://example.com:0/x",
        "https://example.com:99999/x",
        "https://example.com/" + "a" * 2000,
        "http://127.0.0.1:8000/x",
        "http://localhost/x",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/x",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(BadUrl):
        check_url(url, allow_private=False)


def test_good_urls_and_the_private_switch() -> None:
    assert check_url(" https://hooks.example.com/prefloop?x=1 ", False).startswith("https://")
    assert check_url("http://127.0.0.1:9/x", allow_private=True) == "http://127.0.0.1:9/x"
    with pytest.raises(BadUrl):
        check_url("file:///etc/passwd", allow_private=True)


def test_admin_creates_an_endpoint_and_sees_the_secret_once(client) -> None:  # type: ignore[no-untyped-def]
    h = auth(make_user("root", "admin"))
    csrf = _csrf(client.get(PAGE, headers=h).text)
    evil = '<script>alert("x")</script>'
    r = client.post(
        PAGE,
        data={
            "csrf_token": csrf,
            "url": "https://hooks.example.com/in",
            "description": evil,
            "events": ["run.failed", "task.completed"],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    secret = re.search(r'id="new-secret">(whsec_[A-Za-z0-9+/=]+)<', r.text)
    assert secret and len(secret.group(1)) > 40
    assert evil not in r.text and "&lt;script&gt;" in r.text
    with session_scope() as s:
        [e] = s.scalars(select(WebhookEndpoint)).all()
        assert e.events == ["run.failed", "task.completed"] and e.secret == secret.group(1)
    later = client.get(PAGE, headers=h).text
    assert secret.group(1) not in later and "https://hooks.example.com/in" in later

    # disable, test-send refused while disabled, enable, test-send queued
    r = client.post(
        f"{PAGE}/{e.id}/active",
        data={"csrf_token": csrf, "active": "0"},
        headers=h,
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = client.post(f"{PAGE}/{e.id}/test", data={"csrf_token": csrf}, headers=h)
    assert r.status_code == 409 and "disabled" in r.text
    client.post(f"{PAGE}/{e.id}/active", data={"csrf_token": csrf, "active": "1"}, headers=h)
    r = client.post(
        f"{PAGE}/{e.id}/test", data={"csrf_token": csrf}, headers=h, follow_redirects=False
    )
    assert r.status_code == 303
    with session_scope() as s:
        [d] = s.scalars(select(WebhookDelivery)).all()
        assert d.event_type == "webhook.test" and d.status == "pending"
    page = client.get(PAGE, headers=h).text
    assert "webhook.test" in page and d.msg_id in page


def test_hostile_form_posts_get_4xx_and_store_nothing(client) -> None:  # type: ignore[no-untyped-def]
    h = auth(make_user("root", "admin"))
    csrf = _csrf(client.get(PAGE, headers=h).text)
    cases = [
        {"url": "http://127.0.0.1/x", "events": ["run.failed"]},  # private
        {"url": "https://ok.example.com/x", "events": ["nope.event"]},
        {"url": "https://ok.example.com/x"},  # no events
        {"url": "https://ok.example.com/x", "events": ["run.failed"], "description": "d" * 201},
        {"url": "https://ok.example.com/x", "events": ["run.failed"], "description": "a\x00b"},
        {"url": "x" * 100_000, "events": ["run.failed"]},
    ]
    for data in cases:
        r = client.post(PAGE, data={"csrf_token": csrf, **data}, headers=h)
        assert r.status_code == 400, (data, r.status_code)
        assert 'role="alert"' in r.text
    assert _endpoints() == 0
    r = client.post(PAGE, data={"csrf_token": "wrong", "url": "https://a.example.com"}, headers=h)
    assert r.status_code == 403
    for path in (f"{PAGE}/999/active", f"{PAGE}/999/test"):
        assert client.post(path, data={"csrf_token": csrf}, headers=h).status_code == 404
    big = client.post(f"{PAGE}/99999999999/test", data={"csrf_token": csrf}, headers=h)
    assert big.status_code == 422
    assert _endpoints() == 0


def test_endpoint_limit(client) -> None:  # type: ignore[no-untyped-def]
    with settings_env(webhook_max_endpoints="2"), session_scope() as s:
        for i in range(2):
            service.create_endpoint(s, f"https://h{i}.example.com/", ["run.failed"])
        with pytest.raises(service.WebhookError, match="at most 2"):
            service.create_endpoint(s, "https://h3.example.com/", ["run.failed"])


def test_only_admins(client) -> None:  # type: ignore[no-untyped-def]
    for role in ("labeler", "researcher"):
        h = auth(make_user(f"u-{role}", role))
        assert client.get(PAGE, headers=h).status_code == 403
        form = {"url": "https://a.example.com", "events": "run.failed"}
        r = client.post(PAGE, data=form, headers=h)
        assert r.status_code == 403
        assert client.post(f"{PAGE}/1/test", headers=h).status_code == 403
    anon = client.get(PAGE, headers={"accept": "text/html"}, follow_redirects=False)
    assert anon.status_code == 303 and anon.headers["location"].startswith("/login")
    assert _endpoints() == 0
