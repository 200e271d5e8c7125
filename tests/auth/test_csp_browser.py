"""Every page passes the Content-Security-Policy in a real chromium: no violation is reported
(the `page` fixture fails any browser test on one; this test opens every page)."""

from __future__ import annotations

import pytest

from app.db import session_scope
from app.models import Run, RunKind, RunStatus
from tests.browser.helpers import PASSWORD, make_task
from tests.factories import make_user

pytestmark = pytest.mark.browser


def test_every_page_passes_the_csp(live_server, page):
    make_user("root", "admin", PASSWORD)
    make_task("What is 2+2?", ["4", "5"])
    with session_scope() as s:
        run = Run(kind=RunKind.reward, status=RunStatus.running, params={}, progress_step=3,
                  progress_total=10)  # fmt: skip
        s.add(run)
        s.flush()
        run_id = run.id
    base = live_server.url
    page.goto(base + "/login")
    page.fill("input[name=name]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/admin")
    for path in [
        "/admin",
        "/admin/runs",
        f"/admin/runs/{run_id}",
        "/admin/models",
        "/admin/guidelines",
        "/admin/users",
        "/admin/users/1",
        "/admin/audit",
        "/research",
        "/research/agreement",
        "/label",
    ]:
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__cspViolations") == [], path
    # the bar width comes from an SVG attribute, not a (blocked) style attribute
    page.goto(f"{base}/admin/runs/{run_id}")
    assert page.locator("#run-progress .fill").get_attribute("width") == "30.0"
    # and the policy is really enforced: an injected inline script is refused (in a context of
    # its own: the `page` fixture fails on any violation)
    other = page.context.browser.new_context()
    try:
        probe = other.new_page()
        probe.goto(base + "/login")
        probe.evaluate(
            "() => { window.blocked = []; document.addEventListener('securitypolicyviolation',"
            " e => window.blocked.push(e.violatedDirective));"
            " const s = document.createElement('script'); s.textContent = 'window.x = 1';"
            " document.body.appendChild(s); }"
        )
        probe.wait_for_function("window.blocked.length > 0")
        assert probe.evaluate("window.x") is None
    finally:
        other.close()
    r = page.request.get(base + "/admin")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
