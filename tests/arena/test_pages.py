"""The arena on /admin/models: leaderboard with interval bars, campaigns, forms; roles, escaping."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.db import session_scope
from app.models import ArenaCampaign
from tests.arena.support import seed_battles
from tests.factories import auth, make_user
from tests.workers.support import store_tiny

EVIL = '<script>alert("x")</script>'


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert m
    return m.group(1)


def test_leaderboard_renders_with_interval_bars(client) -> None:
    h = auth(make_user("root", "admin"))
    r = client.get("/admin/models", headers=h)
    assert r.status_code == 200 and "No judged battles yet" in r.text
    seed_battles({"alpha": 3.0, "beta": 1.0, EVIL: 1.5}, 120)
    r = client.get("/admin/models", headers=h)
    assert r.status_code == 200
    svg = r.text.split('id="arena-leaderboard"')[1].split("</svg>")[0]
    assert svg.count('class="interval"') == 3 and svg.count('class="point"') == 3
    assert EVIL not in r.text and "&lt;script&gt;" in r.text
    rows = re.findall(r"<tr><td>(\d)</td><td><code>([^<]+)</code>", r.text)
    assert [name for _, name in rows][0] == "alpha"  # strongest first
    board = client.get("/api/v1/arena/leaderboard", headers=h).json()
    assert board["battles"] == 120 and len(board["pairs"]) == 3


def test_campaign_forms(client, tiny_policy_dir) -> None:
    h = auth(make_user("root", "admin"))
    lab = auth(make_user("lab"))
    va, na = store_tiny(tiny_policy_dir)
    vb, nb = store_tiny(tiny_policy_dir, activate=False)
    page = client.get("/admin/models", headers=h)
    assert f'value="{va}"' in page.text and f'value="{vb}"' in page.text
    csrf = _csrf(page.text)
    url = "/admin/arena/campaigns"
    assert client.post(url, data={"csrf_token": csrf, "version": [va, vb]},
                       headers=lab).status_code == 403  # fmt: skip
    assert client.post(url, data={"csrf_token": "bad", "version": [va, vb]},
                       headers=h).status_code == 403  # fmt: skip
    r = client.post(url, data={"csrf_token": csrf, "version": [va, vb], "target_battles": "x"},
                    headers=h)  # fmt: skip
    assert r.status_code == 422 and "whole number" in r.text
    r = client.post(url, data={"csrf_token": csrf, "version": [va]}, headers=h)
    assert r.status_code == 422 and "2 to 8" in r.text
    form = {"csrf_token": csrf, "version": [va, vb], "name": EVIL, "target_battles": "40"}
    r = client.post(url, data=form, headers=h, follow_redirects=False)
    assert r.status_code == 303
    with session_scope() as s:
        c = s.scalar(select(ArenaCampaign))
        assert c is not None and c.version_ids == [va, vb] and c.target_battles == 40
        cid = c.id
    page = client.get("/admin/models", headers=h).text
    assert EVIL not in page and f'id="campaign-{cid}"' in page and "Stop</button>" in page
    r = client.post(f"/admin/arena/campaigns/{cid}/stop", data={"csrf_token": csrf}, headers=h,
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert client.post("/admin/arena/campaigns/77/stop", data={"csrf_token": csrf},
                       headers=h).status_code == 404  # fmt: skip
    with session_scope() as s:
        assert s.get(ArenaCampaign, cid).status == "stopped"  # type: ignore[union-attr]
