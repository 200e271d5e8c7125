"""The practical limit of an HTTP labeling service here: a minimal ASGI app (no framework) that
runs the app's own hot-path statements over the same pool, with the same JSON output.

    uvicorn bench.labeling.baseline:app --workers 2      (bench/labeling/run.py starts it)

What it leaves out is what the framework does for the product: routing over every route,
dependency injection, request validation with clear 4xx messages, session cookies, CSRF, body
limits, error pages. Auth is a dict lookup (every token loaded at startup), like a warm cache.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import create_engine, text

from app.config import get_settings
from app.db import labeling_pool, sync_url
from app.labeling import ranking
from app.labeling.hot import judgment_out, task_out
from app.labeling.store import PgStore, SubmitParams
from app.models import utcnow

_state: dict[str, Any] = {}


def _principals() -> dict[str, tuple[int, int]]:
    """sha256 of each live token -> (user id, auth_version)."""
    engine = create_engine(sync_url(get_settings().database_url))
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT t.token_hash, u.id, u.auth_version FROM api_tokens t "
                "JOIN users u ON u.id = t.user_id WHERE NOT t.revoked AND u.active"
            )
        ).all()
    engine.dispose()
    return {h: (uid, av) for h, uid, av in rows}


async def _send(send: Any, status: int, body: bytes = b"") -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read(receive: Any) -> bytes:
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                pool = labeling_pool(get_settings())
                _state["store"] = PgStore(
                    pool.conninfo, pool.max_size, pool.timeout_s, pool.statement_timeout_ms
                )
                _state["tokens"] = _principals()
                await _state["store"].open()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _state["store"].close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    path, method = scope["path"], scope["method"]
    if path == "/healthz":
        await _send(send, 200, b'{"ok":true}')
        return
    auth = dict(scope["headers"]).get(b"authorization", b"")
    who = _state["tokens"].get(hashlib.sha256(auth[7:]).hexdigest())
    if who is None:
        await _send(send, 401, b'{"detail":"invalid token"}')
        return
    uid, av = who
    store: PgStore = _state["store"]
    now = utcnow()
    expires = now + timedelta(minutes=10)
    if method == "GET" and path == "/api/v1/tasks/next":
        result = await store.next(uid, av, now, expires)
        if result.offer is None:
            await _send(send, 204)
        else:
            await _send(send, 200, orjson.dumps(task_out(result.offer)))
        return
    parts = path.split("/")  # /api/v1/tasks/{id}/judgments
    if method == "POST" and len(parts) == 6 and parts[5] == "judgments" and parts[4].isdigit():
        body = orjson.loads(await _read(receive))
        choice = body.get("choice")
        positions = ranking.CHOICE_POSITIONS.get(choice) if choice else None
        rank = body.get("ranking")
        params = SubmitParams(
            task_id=int(parts[4]),
            choice=choice,
            positions=orjson.dumps(positions).decode() if positions else None,
            ranking=orjson.dumps(rank).decode() if rank is not None else None,
            flat=sorted(c for g in rank for c in g) if rank is not None else None,
            ratings=orjson.dumps(body.get("ratings", {})).decode(),
            flags=orjson.dumps(body.get("flags", [])).decode(),
            rationale=body.get("rationale"),
            time_spent_ms=body.get("time_spent_ms"),
        )
        want_next = scope["query_string"] == b"next=1"
        result = await store.submit(uid, av, params, now, expires, want_next)
        if result.verdict not in ("ok", "exists"):
            await _send(send, 409, orjson.dumps({"detail": result.verdict}))
            return
        out = judgment_out(result.judgment)  # type: ignore[arg-type]
        if want_next and result.next is not None:
            offer = result.next.offer
            out["next"] = task_out(offer) if offer is not None else None
        await _send(send, 201 if result.verdict == "ok" else 200, orjson.dumps(out))
        return
    await _send(send, 404, b'{"detail":"not found"}')
