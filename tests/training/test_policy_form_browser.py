"""The policy run form in a real chromium: choosing an algorithm shows only its fields, and
submitting starts a run of that algorithm with those values."""

from __future__ import annotations

import pytest

from app.db import session_scope
from app.models import Run, RunKind
from tests.browser.helpers import PASSWORD
from tests.factories import make_user

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails) with the reason
    expect = None

pytestmark = pytest.mark.browser


def test_form_shows_the_chosen_algorithm_and_starts_it(live_server, page):
    make_user("root", "admin", PASSWORD)
    page.goto(live_server.url + "/login")
    page.fill("input[name=name]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/admin")
    page.goto(live_server.url + "/admin/runs")
    form = page.locator("#new-policy")
    expect(form.locator('fieldset[data-algorithm="ppo"]')).to_be_visible()
    expect(form.locator('fieldset[data-algorithm="dpo"]')).to_be_hidden()
    page.select_option("#policy-algorithm", "dpo")
    expect(form.locator('fieldset[data-algorithm="dpo"]')).to_be_visible()
    expect(form.locator('fieldset[data-algorithm="ppo"]')).to_be_hidden()
    expect(form.locator('fieldset[data-algorithm="dpo"]')).to_contain_text("No reward model")
    page.fill('input[name="dpo.beta"]', "0.3")
    form.locator("button[type=submit]").click()
    page.wait_for_url(live_server.url + "/admin/runs/*")
    with session_scope() as s:
        run = s.query(Run).order_by(Run.id.desc()).first()
        assert run is not None and run.kind == RunKind.policy
        assert run.params["algorithm"] == "dpo" and run.params["beta"] == 0.3
