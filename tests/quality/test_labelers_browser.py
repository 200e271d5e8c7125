"""/admin/labelers in a real chromium over a simulated crowd stored as real rows (14 good, 3
random, 2 always-A, 1 fast-random): the 6 bad labelers flagged and listed first, sparklines,
gold from the page, pause and exclude through the page's forms, the detail page; writes
docs/admin-labelers.png."""

from __future__ import annotations

import pytest

from tests.browser.helpers import DOCS, PASSWORD
from tests.factories import make_user
from tests.quality.crowd_seed import seed_crowd

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails) with the reason
    expect = None

pytestmark = pytest.mark.browser

EVIL = "<img src=x onerror=alert(1)>"


def test_labelers_page(live_server, page):  # noqa: F811
    crowd = seed_crowd(600, seed=0, names={18: EVIL})  # an always-A labeler with a hostile name
    bad = sorted(u for u, k in crowd.kinds.items() if k != "good")
    make_user("root", "admin", PASSWORD)
    page.goto(live_server.url + "/login")
    page.fill("input[name=name]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/admin")
    page.click("nav.subnav >> text=Labelers")
    page.wait_for_url(live_server.url + "/admin/labelers")
    rows = page.locator("table.labelers tbody tr")
    expect(rows).to_have_count(20)
    expect(page.locator("tr.flagged")).to_have_count(6)
    for i in range(6):  # flagged first: exactly the bad ones
        name = rows.nth(i).locator("td").first
        expect(name).not_to_contain_text("good-")
    expect(page.locator("tr.flagged", has_text=EVIL).locator(".badge.flag", has_text="position"))\
        .to_have_count(1)  # fmt: skip
    expect(page.locator("tr", has_text="fast-random-20").locator(".badge.flag", has_text="fast"))\
        .to_have_count(1)  # fmt: skip
    expect(rows.nth(10).locator("svg.spark polyline")).to_have_count(2)
    # gold from the page
    page.fill("input[name=task_id]", "2")
    page.fill("input[name=answer]", "a, tie")
    page.click("text=Mark as gold")
    expect(page.locator("#gold")).to_contain_text("1 > 2 or 1 = 2")
    page.locator("tr", has_text="good-1").first.locator("button[data-action=pause]").click()
    expect(page.locator("tr", has_text="good-1").first.locator(".st-paused")).to_have_count(1)
    page.screenshot(path=str(DOCS / "admin-labelers.png"), full_page=True)
    assert len(bad) == 6
    row = page.locator("tr", has_text="random-15")
    row.locator("button[data-action=exclude-retrain]").click()
    expect(page.locator("tr", has_text="random-15").locator(".st-excluded")).to_have_count(1)
    page.locator("tr", has_text="random-15").locator("td a").click()
    expect(page.locator("h1")).to_contain_text("random-15")
    expect(page.locator("text=Exclusions")).to_be_visible()
    expect(page.locator("a[href^='/admin/runs/']")).to_have_count(1)  # the queued reward run
    expect(page.locator("button[data-action=include]")).to_be_visible()
