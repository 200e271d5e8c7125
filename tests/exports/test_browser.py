"""Research pages in a real chromium: preview counts, download, agreement chart."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.helpers import PASSWORD
from tests.exports.helpers import candidates, judge
from tests.factories import make_tasks, make_user

pytestmark = pytest.mark.browser


def test_preview_download_and_chart(page: Any, live_server: Any, tmp_path: Any) -> None:  # noqa: F811
    make_user("rita", "researcher")
    for name in ("alice", "bob", "carol"):
        make_user(name)
    for i, tid in enumerate(make_tasks(4, k=2, required=3)):
        a, b = candidates(tid)
        judge(tid, "alice", [[a], [b]], "a")
        judge(tid, "bob", [[a], [b]], "a")
        judge(tid, "carol", [[b], [a]] if i % 2 else [[a], [b]], "b" if i % 2 else "a")
    base = live_server.url
    page.goto(base + "/login")
    page.fill("input[name=name]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/research")

    page.select_option("select[name=labeler]", ["alice", "carol"])
    page.click("button[name=preview]")
    page.wait_for_selector("#preview")
    assert page.inner_text("td[data-shape=raw]") == "8"
    assert page.inner_text("td[data-shape=trl]") == "2"  # the tasks alice and carol agree on
    assert page.input_value("select[name=labeler] >> nth=0") in ("alice", "carol")

    with page.expect_download() as info:
        page.click("button.primary")
    path = tmp_path / "trl.jsonl"
    info.value.save_as(path)
    assert len(path.read_text().splitlines()) == 2
    assert info.value.suggested_filename.startswith("prefloop-trl-")

    page.goto(base + "/research/agreement")
    page.wait_for_selector("#agreement-chart rect.bar")
    assert page.locator("#agreement-chart rect.bar").count() == 3
    assert "overall" in page.text_content("#agreement-chart")
    assert page.inner_text("#overall-percent").endswith("%")
