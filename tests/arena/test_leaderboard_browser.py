"""The arena leaderboard on /admin/models in a real chromium: interval bars drawn to scale,
a campaign started from the form; screenshot for docs/arena-leaderboard.png."""

from __future__ import annotations

import pytest

from app.arena import service as arena
from app.db import session_scope
from app.models import ModelKind
from app.models_registry import service as registry
from tests.arena.support import seed_battles
from tests.browser.helpers import DOCS, PASSWORD
from tests.factories import make_user

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails) with the reason
    expect = None

pytestmark = pytest.mark.browser

NAMES = ["policy-20261201-0912-a1f3", "policy-20261130-2204-9c0e", "policy-20261130-1517-44b2",
         "policy-20261129-0830-e7d1"]  # fmt: skip


def test_leaderboard_in_a_browser(live_server, page, tmp_path) -> None:
    make_user("root", "admin", PASSWORD)
    with session_scope() as s:
        ids = [
            registry.register_version(s, ModelKind.policy, tmp_path / n, version=n).id
            for n in NAMES
        ]
    seed_battles(dict(zip(NAMES, [4.0, 2.2, 1.4, 1.0], strict=True)), 400, seed=4)
    with session_scope() as s:
        arena.create_campaign(s, ids[:2], "weekly check", 200)
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(live_server.url + "/login")
    page.fill("input[name=name]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/admin")
    page.goto(live_server.url + "/admin/models#arena")
    svg = page.locator("#arena-leaderboard")
    expect(svg).to_be_visible()
    expect(svg.locator("circle.point")).to_have_count(4)
    # bars are drawn to scale: every interval has width, points sit inside, best on top
    boxes = [svg.locator("line.interval").nth(i).bounding_box() for i in range(4)]
    dots = [svg.locator("circle.point").nth(i).bounding_box() for i in range(4)]
    for bar, dot in zip(boxes, dots, strict=True):
        assert bar and dot and bar["width"] > 4
        assert bar["x"] - 1 <= dot["x"] + dot["width"] / 2 <= bar["x"] + bar["width"] + 1
    assert dots[0]["x"] > dots[3]["x"]  # type: ignore[index]
    with session_scope() as s:
        best = arena.board(s)["ratings"][0]["model"]
    expect(page.locator("table.ratings tbody tr").first).to_contain_text(best)
    expect(page.locator("table.pairs tbody tr")).to_have_count(6)
    page.locator("#arena").screenshot(path=str(DOCS / "arena-leaderboard.png"))

    # start a campaign from the form
    page.check(f"#new-campaign input[value='{ids[2]}']")
    page.check(f"#new-campaign input[value='{ids[3]}']")
    page.fill("#new-campaign input[name=name]", "<b>new</b>")
    page.click("#new-campaign button[type=submit]")
    page.wait_for_url(live_server.url + "/admin/models#arena")
    row = page.locator("table.campaigns tbody tr").first
    expect(row).to_contain_text("<b>new</b>")
    expect(row.locator("b")).to_have_count(0)
