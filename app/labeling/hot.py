"""The labeling hot path: one statement per request, responses serialized once with orjson.

The routes in app.labeling.api call these; the cached principal's auth_version is checked inside
the statement, and a mismatch re-authenticates once the normal way before running it again.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response

from app.auth.deps import Principal, reauthenticate
from app.config import get_settings
from app.db import labeling_pool
from app.labeling import ranking
from app.labeling.schemas import JudgmentIn
from app.labeling.store import (
    NextResult,
    Offer,
    PgStore,
    SqliteStore,
    Store,
    Stored,
    SubmitParams,
    Unavailable,
)
from app.models import utcnow
from app.ops.errors import MAX_DB_ID

BUSY_RETRIES = 8  # eligible tasks exist but were locked or changed under this statement
JSON = "application/json"


def store_of(app: FastAPI) -> Store:
    """The app's labeling store, created on first use (closed by the router's lifespan)."""
    store: Store | None = getattr(app.state, "labeling_store", None)
    if store is None:
        settings = get_settings()
        if settings.is_sqlite:
            from sqlalchemy.engine import make_url

            store = SqliteStore(str(make_url(settings.database_url).database))
        else:
            pool = labeling_pool(settings)
            store = PgStore(pool.conninfo, pool.max_size, pool.timeout_s, pool.statement_timeout_ms)
        app.state.labeling_store = store
    return store


def _respond(status: int, content: dict[str, Any]) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type=JSON)


def _unavailable(e: Unavailable) -> HTTPException:
    return HTTPException(503, f"database busy, try again shortly ({e})", {"Retry-After": "1"})


def task_out(offer: Offer) -> dict[str, Any]:
    task_id, expires, required, tags, prompt, ids, texts = offer
    return {
        "task_id": task_id,
        "prompt": orjson.Fragment(prompt),
        "candidates": [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)],
        "lease_expires_at": expires,
        "required_judgments": required,
        "tags": orjson.Fragment(tags or "[]"),
    }


def judgment_out(j: Stored) -> dict[str, Any]:
    jid, task_id, rank, choice, ratings, flags, rationale, spent, order, created = j
    return {
        "id": jid,
        "task_id": task_id,
        "ranking": orjson.Fragment(rank),
        "choice": choice,
        "ratings": orjson.Fragment(ratings),
        "flags": orjson.Fragment(flags),
        "rationale": rationale,
        "time_spent_ms": spent,
        "shown_order": orjson.Fragment(order) if order is not None else None,
        "created_at": created,
    }


async def _next(request: Request, principal: Principal) -> tuple[Principal, NextResult]:
    store = store_of(request.app)
    lease = timedelta(minutes=get_settings().lease_minutes)
    reauthed = False
    for attempt in range(BUSY_RETRIES + 1):
        now = utcnow()
        try:
            result = await store.next(principal.user_id, principal.auth_version, now, now + lease)
        except Unavailable as e:
            raise _unavailable(e) from None
        if not result.auth_ok:
            if reauthed:
                raise HTTPException(401, "your credentials changed; authenticate again")
            principal, reauthed = await reauthenticate(request, principal), True
            continue
        if result.offer is not None or not result.busy:
            return principal, result
        await asyncio.sleep(0.001 * (attempt + 1))
    return principal, NextResult(True, None, False)


async def next_task(request: Request, principal: Principal) -> Response:
    _, result = await _next(request, principal)
    if result.offer is None:
        return Response(status_code=204)
    return _respond(200, task_out(result.offer))


def submit_params(task_id: int, body: JudgmentIn) -> SubmitParams:
    """Check the body (422 for anything wrong in it alone) and shape the statement's input."""
    s = get_settings()
    try:
        flat = ranking.check(body, s.criteria, s.flags)
    except ranking.InvalidJudgment as e:
        raise HTTPException(422, str(e)) from None
    if flat is not None:  # ids past int4 cannot be candidates: 0 never is one either
        flat = [i if 0 < i <= MAX_DB_ID else 0 for i in flat]
    positions = ranking.CHOICE_POSITIONS[body.choice] if body.choice else None
    return SubmitParams(
        task_id=task_id,
        choice=body.choice,
        positions=orjson.dumps(positions).decode() if positions else None,
        ranking=orjson.dumps(body.ranking).decode() if body.ranking is not None else None,
        flat=flat,
        ratings=orjson.dumps(body.ratings).decode(),
        flags=orjson.dumps(body.flags).decode(),
        rationale=body.rationale,
        time_spent_ms=body.time_spent_ms,
    )


async def submit(
    request: Request, principal: Principal, task_id: int, body: JudgmentIn, want_next: bool
) -> Response:
    params = submit_params(task_id, body)
    store = store_of(request.app)
    lease = timedelta(minutes=get_settings().lease_minutes)
    reauthed = False
    for _ in range(3):
        now = utcnow()
        try:
            result = await store.submit(
                principal.user_id, principal.auth_version, params, now, now + lease, want_next
            )
        except Unavailable as e:
            raise _unavailable(e) from None
        if result.verdict == "auth":
            if reauthed:
                raise HTTPException(401, "your credentials changed; authenticate again")
            principal, reauthed = await reauthenticate(request, principal), True
            continue
        if result.verdict == "ok" and result.judgment is None:
            continue  # a concurrent duplicate of this submit stored it first: answer with that one
        break
    else:
        raise HTTPException(503, "could not store the judgment; try again", {"Retry-After": "1"})

    verdict = result.verdict
    if verdict in ("ok", "exists"):
        assert result.judgment is not None  # a stored verdict always carries its judgment row
        status, content = (201 if verdict == "ok" else 200), judgment_out(result.judgment)
    else:
        order = orjson.loads(result.shown_order) if result.shown_order else []
        detail = ranking.message(verdict, task_id, order, result.required)
        status = {"not_found": 404, "choice_k": 422, "bad_ranking": 422}.get(verdict, 409)
        content = {"detail": detail}
    if want_next and status in (200, 201, 409):
        nxt = result.next
        if nxt is None or (nxt.offer is None and nxt.busy):
            # the statement's own pick met only locked tasks: lease on its own (rare)
            principal, nxt = await _next(request, principal)
        content["next"] = task_out(nxt.offer) if nxt.offer is not None else None
    return _respond(status, content)
