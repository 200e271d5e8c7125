"""Guidelines: everyone reads, admins write (JSON API and the admin editor page)."""

from __future__ import annotations

from tests.factories import auth, make_user
from tests.labeling.test_pages import _csrf, login


def test_api_read_write_roles(client):
    admin = auth(make_user("root", "admin"))
    lab = auth(make_user("lab"))
    res = auth(make_user("res", "researcher"))
    first = client.get("/api/v1/guidelines", headers=lab).json()
    assert first["markdown"] == "" and first["updated_at"] is None
    assert "No guidelines" in first["html"]
    assert client.put("/api/v1/guidelines", json={"markdown": "x"}, headers=lab).status_code == 403
    assert client.put("/api/v1/guidelines", json={"markdown": "x"}, headers=res).status_code == 403
    assert client.get("/api/v1/guidelines").status_code == 401
    r = client.put("/api/v1/guidelines", json={"markdown": "Use *care*."}, headers=admin)
    assert r.status_code == 200 and r.json()["html"] == "<p>Use <em>care</em>.</p>\n"
    r = client.put("/api/v1/guidelines", json={"markdown": "v2 <b>"}, headers=admin)
    got = client.get("/api/v1/guidelines", headers=res).json()
    assert got["markdown"] == "v2 <b>" and got["html"] == "<p>v2 &lt;b&gt;</p>\n"
    assert got["updated_at"]


def test_api_rejects_bad_input(client):
    admin = auth(make_user("root", "admin"))
    too_long = {"markdown": "x" * 100_001}
    assert client.put("/api/v1/guidelines", json=too_long, headers=admin).status_code == 422
    assert client.put("/api/v1/guidelines", json={}, headers=admin).status_code == 422
    assert client.put("/api/v1/guidelines", json={"md": "x"}, headers=admin).status_code == 422
    r = client.put("/api/v1/guidelines", json={"markdown": "a\x00b"}, headers=admin)
    assert r.status_code == 422 and "NUL" in r.json()["detail"]


def test_admin_editor_page(client):
    make_user("root", "admin")
    make_user("lab")
    login(client, "root")
    page = client.get("/admin/guidelines")
    assert page.status_code == 200 and "Labeling guidelines" in page.text
    token = _csrf(page.text)
    bad = client.post("/admin/guidelines", data={"markdown": "x", "csrf_token": "nope"})
    assert bad.status_code == 403
    r = client.post(
        "/admin/guidelines",
        data={"markdown": "## Be fair\r\n\r\n<i>raw</i>", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin/guidelines?saved=1"
    page = client.get("/admin/guidelines?saved=1").text
    assert "Saved ✓" in page and "<h2>Be fair</h2>" in page
    assert "<i>raw</i>" not in page and "&lt;i&gt;raw&lt;/i&gt;" in page
    assert client.get("/api/v1/guidelines").json()["markdown"] == "## Be fair\n\n<i>raw</i>"
    r = client.post("/admin/guidelines", data={"markdown": "<u>a\x00", "csrf_token": token})
    assert r.status_code == 422 and "Not saved: guidelines must not contain NUL" in r.text
    assert "<u>" not in r.text and "&lt;u&gt;a" in r.text
    assert client.get("/api/v1/guidelines").json()["markdown"] == "## Be fair\n\n<i>raw</i>"


def test_editor_needs_admin(client):
    lab = auth(make_user("lab"))
    assert client.get("/admin/guidelines", headers=lab).status_code == 403
    r = client.post("/admin/guidelines", data={"markdown": "x"}, headers=lab)
    assert r.status_code == 403
    anon = client.get("/admin/guidelines", headers={"Accept": "text/html"}, follow_redirects=False)
    assert anon.status_code == 303 and anon.headers["location"] == "/login?next=/admin/guidelines"
