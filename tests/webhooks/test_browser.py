"""/admin/webhooks in a real chromium: create an endpoint (secret shown once), send a test that
the worker's sender delivers to a verifying receiver, see it in the deliveries, disable."""

from __future__ import annotations

import re

import pytest

from app.config import get_settings
from tests.browser.helpers import PASSWORD
from tests.factories import make_user
from tests.serving.support import settings_env
from tests.webhooks.receiver import Receiver
from workers.side import webhooks_once

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails) with the reason
    expect = None

pytestmark = pytest.mark.browser


def test_webhooks_page(live_server, page):  # type: ignore[no-untyped-def]
    receiver = Receiver().up()
    make_user("root", "admin", PASSWORD)
    page.goto(live_server.url + "/login")
    page.fill("input[name=name]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/admin")
    page.click("nav.subnav >> text=Webhooks")
    page.wait_for_url(live_server.url + "/admin/webhooks")

    # the live server refuses loopback receivers (the default): a clear message, nothing saved
    page.fill("input[name=url]", receiver.url)
    page.fill("input[name=description]", "<b>ci</b>")
    page.click("text=Create endpoint")
    expect(page.locator("p.error")).to_contain_text("loopback")
    expect(page.locator("input[name=url]")).to_have_value(receiver.url)
    expect(page.locator("text=No endpoints yet.")).to_be_visible()

    # a server that allows receivers on this host (PREFLOOP_WEBHOOK_ALLOW_PRIVATE)
    live_server.stop()
    live_server.env["PREFLOOP_WEBHOOK_ALLOW_PRIVATE"] = "true"
    live_server.start()
    page.goto(live_server.url + "/admin/webhooks")
    page.fill("input[name=url]", receiver.url)
    page.uncheck("input[value='task.completed']")
    page.click("text=Create endpoint")
    secret = page.locator("#new-secret").inner_text()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]{40,}", secret)
    receiver.secret = secret
    row = page.locator("table.webhooks tbody tr")
    expect(row).to_have_count(1)
    expect(row).not_to_contain_text("task.completed")
    page.goto(live_server.url + "/admin/webhooks")
    expect(page.locator("#new-secret")).to_have_count(0)  # shown once
    assert secret not in page.content()

    page.click("text=Send test")
    expect(page.locator("table.deliveries")).to_contain_text("pending")
    try:
        with settings_env(webhook_allow_private="true"):  # the worker's sender, in this process
            assert webhooks_once(get_settings()) == 1
        assert receiver.types() == ["webhook.test"] and receiver.rejected == []
    finally:
        receiver.down()
    page.reload()
    expect(page.locator("table.deliveries")).to_contain_text("succeeded")
    page.click("text=Disable")
    expect(page.locator("table.webhooks")).to_contain_text("disabled")
    expect(page.locator("text=Send test")).to_have_count(0)
