"""The labeling page in a real chromium: keyboard judging, ranking, reloads, retries, escaping."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from app.db import session_scope
from app.models import Assignment, AssignmentStatus, utcnow
from tests.browser.helpers import DOCS, judgments, login, make_task, shown_order, user_id
from tests.factories import auth, make_user

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails) with the reason
    expect = None

pytestmark = pytest.mark.browser

CHAT = [
    {"role": "system", "content": "You are a concise Python tutor."},
    {"role": "user", "content": "How do I reverse a list without changing the original?"},
]
PAIR = [
    "Use slicing, which builds a new list:\n\n```python\nitems = [1, 2, 3]\n"
    "backwards = items[::-1]   # [3, 2, 1]\n```\n\n`items` is left as it was.",
    "Call `reverse()`:\n\n```python\nitems.reverse()\nprint(items)\n```\n\n"
    "It returns the reversed list.",
]
KWISE = [
    "A hash table stores values under keys. It turns each key into a number (the hash) and uses "
    "that number to pick a slot, so finding a value takes about the same time however many "
    "items there are.",
    "It's a data structure.",
    "A hash table maps keys to values.\n\n    table = {}\n    table['apple'] = 3\n\n"
    "Python's dict is one. Lookups are fast on average because the key's hash points straight "
    "to where the value lives.",
    "Hash tables are always faster than lists for everything, and they keep items sorted.",
]


def status(page):  # type: ignore[no-untyped-def]
    return page.locator("#status")


def test_login_and_judge_pairs_by_keyboard(live_server, page):
    make_user("ann")
    task = make_task(CHAT, PAIR)
    login(page, live_server.url, "ann")
    expect(page.locator("#task-info")).to_have_text(f"Task #{task} · 2 candidates")
    expect(page.locator("#prompt .msg")).to_have_count(2)
    expect(page.locator("#pair pre.code")).to_have_count(2)  # code blocks kept as blocks
    expect(page.locator("#n-total")).to_have_text("0")

    page.keyboard.press("1")
    expect(page.locator('[data-choice="a"]')).to_have_attribute("aria-pressed", "true")
    DOCS.mkdir(exist_ok=True)
    page.wait_for_timeout(300)  # let the highlight transition finish
    page.screenshot(path=str(DOCS / "label-pairwise.png"))
    page.keyboard.press("Enter")
    expect(status(page)).to_contain_text("Saved ✓")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#n-total")).to_have_text("1")
    expect(page.locator("#n-today")).to_have_text("1")

    # the empty state polls by itself: a new task appears without any click or reload
    second = make_task("Say hello in French.", ["Bonjour !", "Hola"])
    expect(page.locator("#task-info")).to_have_text(f"Task #{second} · 2 candidates")
    page.keyboard.press("0")
    page.keyboard.press("Enter")
    expect(page.locator("#n-total")).to_have_text("2")

    order1, order2 = shown_order(task, "ann"), shown_order(second, "ann")
    got = judgments()
    assert [(j["task_id"], j["choice"], j["ranking"]) for j in got] == [
        (task, "a", [[order1[0]], [order1[1]]]),
        (second, "both_bad", [order2]),
    ]
    assert all(j["user_id"] == user_id("ann") and j["time_spent_ms"] > 0 for j in got)
    assert got[0]["shown_order"] == order1
    assert page.dialogs == []


def test_rank_four_by_keyboard_with_a_tie_and_reload(live_server, page):
    make_user("ann")
    task = make_task("Explain what a hash table is to a beginner, in 2 or 3 sentences.", KWISE)
    login(page, live_server.url, "ann")
    items = page.locator("#ranking .rank-item")
    expect(items).to_have_count(4)
    order = shown_order(task, "ann")  # candidate n on screen is order[n - 1]

    page.keyboard.press("Enter")  # untouched order: asks for a second Enter instead of sending
    expect(page.locator("#hint")).to_contain_text("not changed the order")
    page.keyboard.press("3")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")  # candidate 3 is now first
    page.keyboard.press("4")
    page.keyboard.press("t")  # 4 tied with 2 (the one above it)
    page.keyboard.press("1")
    page.keyboard.press("ArrowDown")  # 1 moves below the tied pair
    expect(items.locator(".rank-pos")).to_have_text(["1", "=2", "=2", "4"])
    expected = [[order[2]], [order[1], order[3]], [order[0]]]

    page.locator("#ratings .pip", has_text="4").first.click()  # helpfulness 4
    page.locator("#flags label", has_text="factually wrong").click()
    page.fill("#rationale", "3 is accurate and simple; 4 is wrong.")
    page.locator("body").click(position={"x": 5, "y": 5})  # leave the textarea

    page.reload()  # work in progress survives
    expect(status(page)).to_have_text("Restored your unsaved work on this task.")
    expect(items.locator(".rank-pos")).to_have_text(["1", "=2", "=2", "4"])
    expect(page.locator("#rationale")).to_have_value("3 is accurate and simple; 4 is wrong.")
    page.keyboard.press("2")
    page.screenshot(path=str(DOCS / "label-kwise.png"), full_page=True)
    page.keyboard.press("Enter")
    expect(status(page)).to_contain_text("Saved ✓")
    expect(page.locator("#empty")).to_be_visible()

    [j] = judgments()
    assert j["task_id"] == task and j["choice"] is None
    assert j["ranking"] == expected
    assert j["ratings"] == {"helpfulness": 4}
    assert j["flags"] == ["factually_wrong"]
    assert j["rationale"] == "3 is accurate and simple; 4 is wrong."
    assert j["shown_order"] == order
    assert page.dialogs == []


def test_pair_work_survives_reload(live_server, page):
    make_user("ann")
    task = make_task("Is the earth round?", ["Yes, roughly: an oblate spheroid.", "No."])
    login(page, live_server.url, "ann")
    expect(page.locator("#task-info")).to_contain_text(f"#{task}")
    page.keyboard.press("2")
    page.locator("#flags label", has_text="toxic").click()
    page.fill("#rationale", "line one\n  indented line two")
    page.keyboard.press("Enter")  # Enter inside the rationale is a newline, not a submit
    page.wait_for_timeout(300)
    assert judgments() == []
    page.reload()
    expect(page.locator('[data-choice="b"]')).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#flags input[value=toxic]")).to_be_checked()
    expect(page.locator("#rationale")).to_have_value("line one\n  indented line two\n")
    page.locator("#rationale").press("Control+Enter")
    expect(status(page)).to_contain_text("Saved ✓")
    [j] = judgments()
    assert (j["choice"], j["flags"]) == ("b", ["toxic"])
    assert j["rationale"] == "line one\n  indented line two"


def test_submit_is_retried_and_survives_a_reload_while_failing(live_server, page):
    make_user("ann")
    task = make_task("2 + 2 = ?", ["4", "5"])
    posts: list[str] = []
    failing = {"on": True}

    def flaky(route):  # type: ignore[no-untyped-def]
        posts.append(route.request.method)
        if failing["on"]:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/v1/tasks/*/judgments*", flaky)
    login(page, live_server.url, "ann")
    expect(page.locator("#task-info")).to_contain_text(f"#{task}")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(status(page)).to_contain_text("Not saved yet (no connection). Retrying in")
    expect(status(page)).to_contain_text("(attempt 2)")
    assert judgments() == []

    page.reload()  # the unsent judgment is still in the outbox and is sent again on load
    expect(status(page)).to_contain_text("Retrying in")
    assert "Saved" not in status(page).inner_text()
    failing["on"] = False
    expect(status(page)).to_contain_text("Saved ✓", timeout=20_000)
    expect(page.locator("#empty")).to_be_visible()
    assert len(posts) >= 3
    [j] = judgments()
    assert (j["task_id"], j["choice"]) == (task, "a")


def test_submit_waits_out_a_server_restart(live_server, page):
    make_user("ann")
    task = make_task("Capital of France?", ["Paris", "Lyon"])
    login(page, live_server.url, "ann")
    expect(page.locator("#task-info")).to_contain_text(f"#{task}")
    live_server.stop()
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(status(page)).to_contain_text("(attempt 3)", timeout=10_000)
    assert "Saved" not in status(page).inner_text()
    live_server.start()
    expect(status(page)).to_contain_text("Saved ✓", timeout=25_000)
    [j] = judgments()
    assert (j["task_id"], j["choice"]) == (task, "b")


def test_expired_lease_on_a_full_task_is_reported_not_saved(live_server, page):
    make_user("ann")
    bob = auth(make_user("bob"))
    task = make_task("Pick one.", ["first", "second"])
    login(page, live_server.url, "ann")
    expect(page.locator("#task-info")).to_contain_text(f"#{task}")
    with session_scope() as s:  # ann's lease runs out while she reads
        s.execute(
            update(Assignment)
            .where(Assignment.task_id == task)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    api = httpx.Client(base_url=live_server.url, headers=bob)
    assert api.get("/api/v1/tasks/next").json()["task_id"] == task
    assert api.post(f"/api/v1/tasks/{task}/judgments", json={"choice": "a"}).status_code == 201
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(status(page)).to_contain_text("Not saved:")
    expect(status(page)).to_contain_text("your judgment was not stored")
    expect(page.locator("#empty")).to_be_visible()
    assert [j["user_id"] for j in judgments()] == [user_id("bob")]


def test_skip_with_a_reason(live_server, page):
    make_user("ann")
    first = make_task("Translate to Klingon: hello", ["nuqneH", "Qapla'"])
    second = make_task("Name a prime number.", ["7", "9"])
    login(page, live_server.url, "ann")
    expect(page.locator("#task-info")).to_contain_text(f"#{first}")
    page.keyboard.press("s")
    expect(page.locator("#skip-reason")).to_be_focused()
    page.keyboard.type("I can't judge this topic")
    page.keyboard.press("Enter")
    expect(page.locator("#task-info")).to_contain_text(f"#{second}")
    with session_scope() as s:
        row = s.execute(
            select(Assignment.status, Assignment.skip_reason).where(Assignment.task_id == first)
        ).one()
    assert (row.status, row.skip_reason) == (AssignmentStatus.skipped, "I can't judge this topic")
    assert judgments() == []


def test_xss_payloads_stay_inert(live_server, page):
    make_user("ann")
    evil_prompt = [{"role": "user", "content": '<img src=x onerror="window.__pwned=1;alert(1)">'}]
    evil = [
        "<script>window.__pwned=2;alert(2)</script>",
        '<img src=x onerror="window.__pwned=3;alert(3)"> and <b>bold?</b>',
    ]
    task = make_task(evil_prompt, evil)
    login(page, live_server.url, "ann")
    expect(page.locator("#task-info")).to_contain_text(f"#{task}")
    page.wait_for_timeout(300)  # give any injected handler time to fire
    assert page.dialogs == []
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#work img, #work script, #work b").count() == 0
    expect(page.locator("#prompt")).to_contain_text(evil_prompt[0]["content"])
    texts = page.locator("#pair .rich").all_inner_texts()
    assert sorted(t.strip() for t in texts) == sorted(evil)
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    expect(status(page)).to_contain_text("Saved ✓")
    [j] = judgments()
    assert (j["task_id"], j["choice"], len(j["ranking"])) == (task, "tie", 1)


def test_tablet_drag_and_drop_and_guidelines(live_server, page):
    make_user("ann")
    admin = auth(make_user("root", "admin"))
    httpx.put(
        live_server.url + "/api/v1/guidelines",
        json={"markdown": "## Our rules\n\nPrefer **correct** answers."},
        headers=admin,
    ).raise_for_status()
    pair = make_task("Pick one.", ["x" * 400, "y " * 300])
    login(page, live_server.url, "ann")
    page.set_viewport_size({"width": 820, "height": 1180})  # tablet, portrait
    expect(page.locator("#task-info")).to_contain_text(f"#{pair}")
    a, b = page.locator("#pair .cand").all()
    assert b.bounding_box()["y"] >= a.bounding_box()["y"] + a.bounding_box()["height"]  # stacked
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.keyboard.press("g")
    expect(page.locator("#guide h2", has_text="Our rules")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#guide")).to_be_hidden()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(status(page)).to_contain_text("Saved ✓")

    kwise = make_task("Order these.", ["one", "two", "three"])
    expect(page.locator("#task-info")).to_contain_text(f"#{kwise}")
    items = page.locator("#ranking .rank-item")
    order = shown_order(kwise, "ann")
    items.nth(2).drag_to(items.nth(0), target_position={"x": 40, "y": 3})  # top edge: above
    items.nth(2).drag_to(items.nth(0))  # the one now last, onto the middle of the first: tie
    expect(items.locator(".rank-pos")).to_have_text(["=1", "=1", "3"])
    page.keyboard.press("Enter")
    expect(status(page)).to_contain_text("Saved ✓")
    ranking = judgments()[1]["ranking"]
    assert [sorted(g) for g in ranking] == [sorted([order[2], order[1]]), [order[0]]]


def test_expired_session_keeps_the_judgment_until_login(live_server, page):
    make_user("ann")
    task = make_task("Best color?", ["blue", "green"])
    login(page, live_server.url, "ann")
    expect(page.locator("#task-info")).to_contain_text(f"#{task}")
    page.context.clear_cookies()  # the session ends while the labeler works
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(status(page)).to_contain_text("Not saved yet: your session expired")
    assert judgments() == []
    page.locator("#status a").click()
    page.fill("input[name=name]", "ann")
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    expect(status(page)).to_contain_text("Saved ✓")  # the kept judgment is sent after login
    [j] = judgments()
    assert (j["task_id"], j["choice"]) == (task, "b")


def test_refused_judgment_shows_why_and_stays_editable(live_server, page):
    make_user("ann")
    task = make_task("Shortest answer?", ["a", "bb"])
    refusals = []

    def refuse_once(route):  # type: ignore[no-untyped-def]
        if refusals:
            return route.continue_()
        refusals.append(1)
        route.fulfill(status=422, json={"detail": "rating 'helpfulness' must be between 1 and 5"})

    page.route("**/api/v1/tasks/*/judgments*", refuse_once)
    login(page, live_server.url, "ann")
    expect(page.locator("#task-info")).to_contain_text(f"#{task}")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(status(page)).to_have_text(
        "Not saved: rating 'helpfulness' must be between 1 and 5", timeout=5_000
    )
    expect(page.locator('[data-choice="a"]')).to_have_attribute("aria-pressed", "true")
    assert judgments() == []
    page.keyboard.press("2")  # still editable; fix and resend
    page.keyboard.press("Enter")
    expect(status(page)).to_contain_text("Saved ✓")
    [j] = judgments()
    assert (j["task_id"], j["choice"]) == (task, "b")


def _api_calls(page, base_url):  # type: ignore[no-untyped-def]
    """Record every API request the page makes, as (method, path?query)."""
    calls: list[tuple[str, str]] = []
    page.on(
        "request",
        lambda r: (
            calls.append((r.method, r.url.removeprefix(base_url))) if "/api/" in r.url else None
        ),
    )
    return calls


def test_each_judgment_is_one_request(live_server, page):
    make_user("ann")
    first = make_task("First question?", ["yes", "no"])
    second = make_task("Second question?", ["up", "down"])
    login(page, live_server.url, "ann")
    expect(page.locator("#task-info")).to_have_text(f"Task #{first} · 2 candidates")
    expect(page.locator("#n-total")).to_have_text("0")
    calls = _api_calls(page, live_server.url)

    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#task-info")).to_have_text(f"Task #{second} · 2 candidates")
    expect(status(page)).to_contain_text(f"Saved ✓ (task #{first})")
    expect(page.locator("#n-total")).to_have_text("1")  # counted here, not fetched
    assert calls == [("POST", f"/api/v1/tasks/{first}/judgments?next=1")]

    calls.clear()
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()  # the answer said: nothing left
    assert calls[0] == ("POST", f"/api/v1/tasks/{second}/judgments?next=1")
    assert ("GET", "/api/v1/tasks/next") not in calls[:2]  # the empty screen polls later
    got = judgments()
    assert [(j["task_id"], j["choice"]) for j in got] == [(first, "a"), (second, "b")]
    order = shown_order(second, "ann")
    assert got[1]["ranking"] == [[order[1]], [order[0]]]  # "b": the second one shown won


def test_one_request_flow_survives_retries_and_moves_on(live_server, page):
    make_user("ann")
    first = make_task("3 * 3 = ?", ["9", "6"])
    second = make_task("3 + 3 = ?", ["6", "9"])
    failures = {"left": 2}

    def flaky(route):  # type: ignore[no-untyped-def]
        if failures["left"]:
            failures["left"] -= 1
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/v1/tasks/*/judgments?next=1", flaky)
    login(page, live_server.url, "ann")
    expect(page.locator("#task-info")).to_contain_text(f"#{first}")
    calls = _api_calls(page, live_server.url)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(status(page)).to_contain_text("Not saved yet (no connection)")
    expect(page.locator("#task-info")).to_have_text(
        f"Task #{second} · 2 candidates", timeout=20_000
    )
    expect(status(page)).to_contain_text(f"Saved ✓ (task #{first})")
    # three tries of the same request, and the next task came with the third answer
    assert calls == [("POST", f"/api/v1/tasks/{first}/judgments?next=1")] * 3
    [j] = judgments()
    assert (j["task_id"], j["choice"]) == (first, "a")


def test_a_409_answer_carries_the_next_task(live_server, page):
    make_user("ann")
    bob = auth(make_user("bob"))
    first = make_task("Pick one.", ["first", "second"])
    second = make_task("Pick another.", ["third", "fourth"])
    login(page, live_server.url, "ann")
    expect(page.locator("#task-info")).to_contain_text(f"#{first}")
    with session_scope() as s:  # ann's lease runs out while she reads; bob takes the task
        s.execute(
            update(Assignment)
            .where(Assignment.task_id == first)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    api = httpx.Client(base_url=live_server.url, headers=bob)
    assert api.get("/api/v1/tasks/next").json()["task_id"] == first
    assert api.post(f"/api/v1/tasks/{first}/judgments", json={"choice": "a"}).status_code == 201
    calls = _api_calls(page, live_server.url)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(status(page)).to_contain_text("your judgment was not stored")
    expect(status(page)).to_contain_text("Moving on.")
    expect(page.locator("#task-info")).to_have_text(f"Task #{second} · 2 candidates")
    assert calls == [("POST", f"/api/v1/tasks/{first}/judgments?next=1")]
    assert [j["user_id"] for j in judgments()] == [user_id("bob")]
    expect(page.locator("#n-total")).to_have_text("0")
