"""Helpers for the browser tests (the `browser` and `page` fixtures live in tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.db import session_scope
from app.models import Assignment, Judgment, User
from app.prompts import parsing, store

DOCS = Path(__file__).resolve().parents[2] / "docs"
PASSWORD = "password123"


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
