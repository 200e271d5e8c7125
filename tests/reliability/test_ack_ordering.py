"""What a client is told is already committed when the first response byte leaves the server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from app.db import sync_url
from app.main import create_app
from app.models import Assignment, Judgment
from tests.conftest import DATABASE_URL
from tests.factories import make_tasks, make_user


def _committed(model: Any, **where: Any) -> bool:
    """Seen from another plain connection (no BEGIN IMMEDIATE): only committed rows show."""
    engine = create_engine(sync_url(DATABASE_URL), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.scalar(select(model.id).filter_by(**where)) is not None
    finally:
        engine.dispose()


async def _call(app: Any, method: str, path: str, token: str, body: Any, on_start: Any) -> Any:
    """Drive the ASGI app directly so the test runs code at the moment the response starts."""
    raw = json.dumps(body).encode() if body is not None else b""
    path, _, query = path.partition("?")
    headers = [(b"host", b"test"), (b"authorization", f"Bearer {token}".encode())]
    if body is not None:
        headers += [(b"content-type", b"application/json")]
        headers += [(b"content-length", str(len(raw)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "root_path": "",
        "state": {},
    }
    sent = False
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["committed_at_start"] = await asyncio.to_thread(on_start)
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out


def test_lease_and_judgment_are_committed_before_the_response_starts() -> None:
    token = make_user("alice")
    (task_id,) = make_tasks(1, k=2)
    app = create_app()

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with app.router.lifespan_context(app):
            lease = await _call(
                app, "GET", "/api/v1/tasks/next", token, None,
                lambda: _committed(Assignment, task_id=task_id),
            )  # fmt: skip
            task = json.loads(lease["body"])
            body = {"ranking": [[c["id"]] for c in task["candidates"]]}
            vote = await _call(
                app, "POST", f"/api/v1/tasks/{task_id}/judgments", token, body,
                lambda: _committed(Judgment, task_id=task_id),
            )  # fmt: skip
            return lease, vote

    lease, vote = asyncio.run(scenario())
    assert lease["status"] == 200 and vote["status"] == 201
    assert lease["committed_at_start"], "the lease was sent before it was committed"
    assert vote["committed_at_start"], "201 was sent before the judgment was committed"


def test_submit_and_next_commits_both_before_the_response_starts() -> None:
    token = make_user("alice")
    first, second = make_tasks(2, k=2)
    app = create_app()

    async def scenario() -> dict[str, Any]:
        async with app.router.lifespan_context(app):
            lease = await _call(app, "GET", "/api/v1/tasks/next", token, None, lambda: True)
            task = json.loads(lease["body"])
            assert task["task_id"] == first
            body = {"ranking": [[c["id"]] for c in task["candidates"]]}

            def both() -> tuple[bool, bool]:
                return _committed(Judgment, task_id=first), _committed(Assignment, task_id=second)

            url = f"/api/v1/tasks/{first}/judgments?next=1"
            return await _call(app, "POST", url, token, body, both)

    vote = asyncio.run(scenario())
    assert vote["status"] == 201
    assert json.loads(vote["body"])["next"]["task_id"] == second
    judged, leased = vote["committed_at_start"]
    assert judged, "201 was sent before the judgment was committed"
    assert leased, "the next task was sent before its lease was committed"
