"""/admin/labelers in a real chromium: flagged labelers first, sparklines, pause and exclude
through the page's forms, gold from the page; writes docs/admin-labelers.png."""

from __future__ import annotations

import pytest

from tests.browser.helpers import DOCS, PASSWORD
from tests.factories import make_user
from tests.quality.test_labelers import EVIL, _crowd

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails) with the reason
    expect = None

pytestmark = pytest.mark.browser


def test_labelers_page(live_server, page):  # noqa: F811
    ids = _crowd()
    make_user("root", "admin", PASSWORD)
    page.goto(live_server.url + "/login")
    page.fill("input[name=name]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/admin")
    page.click("nav.subnav >> text=Labelers")
    page.wait_for_url(live_server.url + "/admin/labelers")
    rows = page.locator("table.labelers tbody tr")
    expect(rows).to_have_count(4)
    # flagged first; the hostile name is shown as text
    first = rows.nth(0)
    expect(first.locator("td").first).to_contain_text(EVIL)
    for flag in ("gold", "agreement", "position", "fast"):
        expect(first.locator(".badge.flag", has_text=flag)).to_have_count(1)
    expect(page.locator(f"#labeler-{ids['good1']} .badge.flag")).to_have_count(0)
    expect(first.locator("svg.spark polyline")).to_have_count(2)
    # gold from the page
    page.fill("input[name=task_id]", "6")
    page.fill("input[name=answer]", "a, tie")
    page.click("text=Mark as gold")
    expect(page.locator("#gold")).to_contain_text("1 > 2 or 1 = 2")
    # pause a good labeler, then exclude the flagged one
    page.locator(f"#labeler-{ids['good2']} button[data-action=pause]").click()
    expect(page.locator(f"#labeler-{ids['good2']} .st-paused")).to_have_count(1)
    page.screenshot(path=str(DOCS / "admin-labelers.png"), full_page=True)
    page.locator(f"#labeler-{ids[EVIL]} button[data-action=exclude]").click()
    expect(page.locator(f"#labeler-{ids[EVIL]} .st-excluded")).to_have_count(1)
    page.click(f"#labeler-{ids[EVIL]} td a")
    expect(page.locator("h1")).to_contain_text(EVIL)
    expect(page.locator("text=Exclusions")).to_be_visible()
    expect(page.locator("button[data-action=include]")).to_be_visible()
