"""The labeling page: login required, renders its shell, escapes guidelines and config."""

from __future__ import annotations

import json
import re

from tests.factories import auth, make_user

HTML = {"Accept": "text/html,application/xhtml+xml"}


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert m, "page has no csrf meta tag"
    return m.group(1)


def login(client, name: str, password: str = "password123"):  # type: ignore[no-untyped-def]
    """Log in through the form like a browser; returns the final response."""
    token = _csrf(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token})


def test_anonymous_browser_is_sent_to_login(client):
    r = client.get("/label", headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/label"
    # an API client without credentials gets a plain 401
    assert client.get("/label", headers={"Accept": "application/json"}).status_code == 401


def test_labeler_lands_on_label_page_after_login(client):
    make_user("lab")
    r = login(client, "lab")
    assert r.status_code == 200
    assert str(r.url).endswith("/label")
    assert '<script src="/static/label.js"' in r.text
    assert 'id="status" role="status"' in r.text
    config = json.loads(re.search(r'id="label-config">(.*?)</script>', r.text).group(1))
    assert config["criteria"] == ["helpfulness", "honesty", "harmlessness"]
    assert config["flags"] == ["toxic", "dangerous", "factually_wrong"]
    assert isinstance(config["user_id"], int)
    # the default guidelines show when an admin never wrote any
    assert "No guidelines have been written yet" in r.text


def test_researcher_may_not_label(client):
    h = auth(make_user("res", "researcher"))
    assert client.get("/label", headers=h).status_code == 403


def test_guidelines_render_markdown_and_escape_html(client):
    admin = auth(make_user("root", "admin"))
    evil = (
        "# Rules\n\nBe **kind**.\n\n<script>alert('x')</script>\n\n"
        "<img src=x onerror=alert(1)>\n\n[click](javascript:alert(1))\n"
    )
    r = client.put("/api/v1/guidelines", json={"markdown": evil}, headers=admin)
    assert r.status_code == 200
    page = client.get("/label", headers=admin).text
    assert "<h1>Rules</h1>" in page and "<strong>kind</strong>" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'href="javascript:' not in page


def test_label_page_user_name_is_escaped(client):
    h = auth(make_user("<b>x</b>"))
    page = client.get("/label", headers=h).text
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_static_assets_are_served(client):
    for path in ("/static/label.js", "/static/label.css"):
        r = client.get(path)
        assert r.status_code == 200 and len(r.content) > 1000, path
    assert "innerHTML" not in client.get("/static/label.js").text
