"""Playwright (sync) driving Debian chromium against the live_server fixture.

Skips with a clear reason when /usr/bin/chromium or the playwright package is missing, unless
PREFLOOP_REQUIRE_BROWSER=1 (then the absence is a failure).
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.db import session_scope
from app.models import Assignment, Judgment, User
from app.prompts import parsing, store

CHROMIUM = Path(os.environ.get("PREFLOOP_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DOCS = Path(__file__).resolve().parents[2] / "docs"
PASSWORD = "password123"


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is not installed (pip install playwright)"
    if not CHROMIUM.exists():
        return f"chromium not found at {CHROMIUM} (apt-get install chromium)"
    return None


class _Shared:
    """One playwright driver and one chromium at a time, per test module.

    Module scope, not session: a running sync playwright keeps an event loop running in the main
    thread, which breaks later tests that call asyncio.run(). Other packages import the fixture;
    should two instances ever overlap they share this one, and the last to finish closes it.
    """

    users = 0
    playwright: Any = None
    browser: Any = None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason:
        if os.environ.get("PREFLOOP_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (PREFLOOP_REQUIRE_BROWSER=1) but {reason}")
        pytest.skip(f"browser tests skipped: {reason}")
    from playwright.sync_api import sync_playwright

    if _Shared.users == 0:
        _Shared.playwright = sync_playwright().start()
        _Shared.browser = _Shared.playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True
        )
    _Shared.users += 1
    try:
        yield _Shared.browser
    finally:
        _Shared.users -= 1
        if _Shared.users == 0:
            _Shared.browser.close()
            _Shared.playwright.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context at 1280 px; any JS dialog (alert, confirm) is recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    # the "nothing to do" screen re-checks every 15 s in production; faster here
    context.add_init_script("window.PREFLOOP_POLL_MS = 500;")
    pg = context.new_page()
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()


def login(page: Any, base_url: str, name: str) -> None:
    """Log in through the form and land on the labeling page."""
    page.goto(base_url + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/label")


def make_task(prompt: str | list[dict[str, str]], completions: list[str], required: int = 1) -> int:
    """One comparison task with exactly these texts; returns its id."""
    line = json.dumps({"prompt": prompt, "completions": completions}).encode()
    records = parsing.parse(line, "comparisons", "jsonl")
    with session_scope() as session:
        _, ids = store.import_comparisons(session, records, required)
    return ids[0]


def user_id(name: str) -> int:
    with session_scope() as session:
        return session.scalar(select(User.id).where(User.name == name))


def shown_order(task_id: int, name: str) -> list[int]:
    """The candidate order the server recorded for this labeler's lease."""
    with session_scope() as session:
        return session.scalar(
            select(Assignment.shown_order).where(
                Assignment.task_id == task_id, Assignment.user_id == user_id(name)
            )
        )


def judgments() -> list[dict[str, Any]]:
    """Every stored judgment, as plain dicts, oldest first."""
    with session_scope() as session:
        rows = session.scalars(select(Judgment).order_by(Judgment.id)).all()
        return [
            {
                "task_id": j.task_id,
                "user_id": j.user_id,
                "ranking": j.ranking,
                "choice": j.choice,
                "ratings": j.ratings,
                "flags": j.flags,
                "rationale": j.rationale,
                "time_spent_ms": j.time_spent_ms,
                "shown_order": j.shown_order,
            }
            for j in rows
        ]
