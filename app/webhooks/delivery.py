"""Sending: sign with the endpoint's secret (standardwebhooks), POST, record, retry with backoff.

Called by the worker (`workers/side.py`). A delivery is claimed in a short transaction (its
next attempt pushed past the request timeout, so a crashed sender's claim expires), sent with no
transaction open, and its outcome recorded in another. Non-2xx, a timeout, a refused connection
or a redirect count as failures; after the last wait of PREFLOOP_WEBHOOK_RETRY_S it is failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased
from standardwebhooks.webhooks import Webhook

from app.config import Settings, get_settings
from app.db import session_scope
from app.models import (
    ComparisonTask,
    DeliveryStatus,
    Judgment,
    TaskStatus,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from app.models.app_setting import AppSetting
from app.webhooks.events import emit
from app.webhooks.urls import BadUrl, check_resolved

log = logging.getLogger("prefloop.webhooks")

BATCH = 20
CURSOR_KEY = "webhooks.task_cursor"
SETTLE = timedelta(seconds=10)  # a judgment's id is taken before its transaction commits
SCAN_BATCH = 1000
USER_AGENT = "prefloop-webhooks/1"


@dataclass(frozen=True)
class Claimed:
    id: int
    url: str
    secret: str
    msg_id: str
    payload: str
    attempts: int


def sign(secret: str, msg_id: str, body: str, when: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt (the timestamp is the attempt's)."""
    signature = Webhook(secret).sign(msg_id, when.astimezone(UTC).replace(tzinfo=None), body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def claim(session: Session, settings: Settings, now: datetime, limit: int = BATCH) -> list[Claimed]:
    q = (
        select(WebhookDelivery, WebhookEndpoint.url, WebhookEndpoint.secret)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.pending,
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.active,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(of=WebhookDelivery, skip_locked=True)
    lease = now + timedelta(seconds=settings.webhook_timeout_s + 30)
    out = []
    for d, url, secret in session.execute(q):
        d.attempts += 1
        d.next_attempt_at = lease
        out.append(Claimed(d.id, url, secret, d.msg_id, d.payload, d.attempts))
    session.flush()
    return out


def send(c: Claimed, client: httpx.Client, settings: Settings) -> tuple[int | None, str | None]:
    """One attempt: (status code, error); error None means delivered."""
    try:
        check_resolved(c.url, settings.webhook_allow_private)
        r = client.post(
            c.url, content=c.payload.encode(), headers=sign(c.secret, c.msg_id, c.payload, utcnow())
        )
    except BadUrl as e:
        return None, str(e)
    except httpx.HTTPError as e:
        return None, f"{type(e).__name__}: {e}"[:300] or type(e).__name__
    if 200 <= r.status_code < 300:
        return r.status_code, None
    return r.status_code, f"HTTP {r.status_code}"


def record(
    session: Session,
    c: Claimed,
    code: int | None,
    error: str | None,
    settings: Settings,
    now: datetime,
) -> DeliveryStatus:
    d = session.get(WebhookDelivery, c.id)
    if d is None:  # its endpoint was deleted meanwhile
        return DeliveryStatus.failed
    d.last_status_code = code
    d.last_error = error[:500] if error else None
    if error is None:
        d.status = DeliveryStatus.succeeded
        d.finished_at = now
    elif c.attempts > len(settings.webhook_retry_s):
        d.status = DeliveryStatus.failed
        d.finished_at = now
    else:
        d.next_attempt_at = now + timedelta(seconds=settings.webhook_retry_s[c.attempts - 1])
    session.flush()
    return d.status


def deliver_due(settings: Settings | None = None, client: httpx.Client | None = None) -> int:
    """Send every due delivery (one batch); returns how many attempts were made."""
    settings = settings or get_settings()
    with session_scope() as session:
        batch = claim(session, settings, utcnow())
    if not batch:
        return 0
    own = client is None
    client = client or httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)
    try:
        for c in batch:
            code, error = send(c, client, settings)
            with session_scope() as session:
                status = record(session, c, code, error, settings, utcnow())
            if error:
                log.warning("webhook %s to %s: %s (%s)", c.msg_id, c.url, error, status.value)
    finally:
        if own:
            client.close()
    return len(batch)


def scan_completed_tasks(session: Session, now: datetime | None = None) -> int:
    """Emit `task.completed` for tasks whose last judgment arrived since the previous scan.

    Reads judgments after a cursor (kept in app_settings), oldest first, stopping at the first
    one younger than SETTLE (ids are taken before commit, so a younger one may still have a
    lower-id neighbour in flight). With no endpoint subscribed the cursor just moves on."""
    now = now or utcnow()
    row = session.get(AppSetting, CURSOR_KEY, with_for_update=True)
    if row is None:
        row = AppSetting(key=CURSOR_KEY, value="")
        session.add(row)
    cursor = int(row.value) if row.value.isdigit() else None
    subscribed = any(
        "task.completed" in (events or [])
        for events in session.scalars(select(WebhookEndpoint.events).where(WebhookEndpoint.active))
    )
    cutoff = now - SETTLE
    if cursor is None or not subscribed:
        latest = session.scalar(
            select(Judgment.id)
            .where(Judgment.created_at < cutoff)
            .order_by(Judgment.id.desc())
            .limit(1)
        )
        row.value = str(max(latest or 0, cursor or 0))
        session.flush()
        return 0
    settled: list[int] = []
    for jid, created in session.execute(
        select(Judgment.id, Judgment.created_at)
        .where(Judgment.id > cursor)
        .order_by(Judgment.id)
        .limit(SCAN_BATCH)
    ):
        if created >= cutoff:
            break
        settled.append(jid)
    if not settled:
        return 0
    last = (
        select(Judgment.task_id, Judgment.id.label("jid"))
        .where(Judgment.id.in_(settled))
        .subquery()
    )
    newer = aliased(Judgment)
    later = select(newer.id).where(newer.task_id == last.c.task_id, newer.id > last.c.jid).exists()
    emitted = 0
    q = (
        select(ComparisonTask, last.c.jid, Judgment.created_at)
        .join(last, last.c.task_id == ComparisonTask.id)
        .join(Judgment, Judgment.id == last.c.jid)
        .where(ComparisonTask.status == TaskStatus.complete, ~later)
        .order_by(last.c.jid)
    )
    for task, _jid, completed_at in session.execute(q):
        data = {
            "task_id": task.id,
            "prompt_id": task.prompt_id,
            "judgments": task.judgment_count,
            "required_judgments": task.required_judgments,
            "tags": task.tags or [],
            "completed_at": completed_at.isoformat(),
        }
        if emit(session, "task.completed", data, key=f"task_completed_{task.id}"):
            emitted += 1
    row.value = str(settled[-1])
    session.flush()
    return emitted
