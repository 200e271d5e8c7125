"""The run detail page in a real chromium: live progress, ETA, curves and log tail from the API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.db import session_scope
from app.models import Run, RunKind, RunStatus, utcnow
from tests.browser.helpers import PASSWORD
from tests.factories import make_user

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails) with the reason
    expect = None

pytestmark = pytest.mark.browser


def _update(run_id: int, **values) -> None:  # type: ignore[no-untyped-def]
    with session_scope() as s:
        run = s.get(Run, run_id)
        for k, v in values.items():
            setattr(run, k, v)


def test_run_page_follows_the_run_live(live_server, page):  # noqa: F811
    make_user("root", "admin", PASSWORD)
    with session_scope() as s:
        run = Run(
            kind=RunKind.reward,
            status=RunStatus.running,
            params={"note": "<i>p</i>"},
            progress_step=2,
            progress_total=10,
            started_at=utcnow() - timedelta(seconds=20),
            heartbeat_at=utcnow(),
            worker_id="w",
        )
        s.add(run)
        s.flush()
        rid = run.id
    page.goto(live_server.url + "/login")
    page.fill("input[name=name]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/admin")
    page.goto(f"{live_server.url}/admin/runs/{rid}")
    expect(page.locator("#run-progress .bar")).to_have_attribute("aria-valuenow", "20")
    expect(page.locator("#run-eta")).to_contain_text("ETA")

    _update(
        rid,
        progress_step=5,
        metrics={"loss": 0.4, "curves": {"loss": [[1, 0.9], [2, 0.7], [5, 0.4]]}},
        log_tail="step 5 <b>bold?</b>\n",
    )
    expect(page.locator("#run-steps")).to_have_text("5 / 10")
    expect(page.locator("#run-progress .bar")).to_have_attribute("aria-valuenow", "50")
    expect(page.locator("#charts svg")).to_have_count(1)
    expect(page.locator("#charts svg polyline")).to_have_count(1)
    expect(page.locator("#run-log")).to_have_text("step 5 <b>bold?</b>\n")
    expect(page.locator("#run-log b")).to_have_count(0)
    expect(page.locator("#run-metrics")).to_contain_text("loss")

    _update(rid, status=RunStatus.succeeded, progress_step=10, finished_at=utcnow())
    expect(page.locator("#run-status .badge")).to_have_text("succeeded")
    expect(page.locator("#run-eta")).to_have_text("finished")
    expect(page.locator("#cancel-form")).to_be_hidden()
    assert page.dialogs == []
