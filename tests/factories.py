"""Plain-function factories writing real rows through the services."""

from __future__ import annotations

import json

from app.db import session_scope
from app.models import Role
from app.prompts import parsing, store
from app.users.service import create_token, create_user


def make_user(name: str, role: Role | str = Role.labeler, password: str = "password123") -> str:
    """Create a user; returns a bearer token for it."""
    with session_scope() as session:
        create_user(session, name, role, password)
        _, token = create_token(session, name, "test")
    return token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def comparison_lines(n: int, k: int = 2, required: int | None = None, prefix: str = "p") -> bytes:
    rows = []
    for i in range(n):
        row: dict = {
            "prompt": f"{prefix} prompt {i}",
            "completions": [f"{prefix} answer {i}.{j}" for j in range(k)],
        }
        if required:
            row["required_judgments"] = required
        rows.append(json.dumps(row))
    return ("\n".join(rows) + "\n").encode()


def make_tasks(n: int, k: int = 2, required: int = 1, prefix: str = "p") -> list[int]:
    """Create n comparison tasks with k candidates; returns their ids."""
    records = parsing.parse(comparison_lines(n, k, required, prefix), "comparisons", "jsonl")
    with session_scope() as session:
        _, ids = store.import_comparisons(session, records, required)
    return ids
