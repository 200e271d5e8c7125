"""The events prefloop sends, and `emit`: queue one delivery per subscribed endpoint in the
caller's transaction (an outbox: the event and its deliveries commit or roll back together)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import WebhookDelivery, WebhookEndpoint, utcnow

EVENTS: dict[str, str] = {
    "run.succeeded": "a generate, reward or PPO run succeeded",
    "run.failed": "a run failed (also: reclaimed from a dead worker with no attempts left)",
    "model.activated": "a model version became the active one of its kind",
    "model.rolled_back": "an older model version was activated again (a rollback)",
    "export.created": "a preference export finished (its snapshot has rows and a checksum)",
    "task.completed": "a comparison task received its last required judgment",
    "labeler.flagged": "a labeler was flagged for review by the quality checks",
}
TEST_EVENT = "webhook.test"


def payload(event_type: str, data: dict[str, Any], when: datetime | None = None) -> str:
    """The JSON body: {"type", "timestamp", "data"} (the Standard Webhooks payload shape)."""
    body = {"type": event_type, "timestamp": (when or utcnow()).isoformat(), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str)


def emit(
    session: Session,
    event_type: str,
    data: dict[str, Any],
    key: str | None = None,
    endpoint_ids: list[int] | None = None,
) -> int:
    """Queue `event_type` for every active endpoint subscribed to it; returns how many.

    `key` makes the message id deterministic (`msg_<key>`): a second emit with the same key to
    the same endpoint is skipped, so a retried scan never sends an event twice."""
    if event_type not in EVENTS and event_type != TEST_EVENT:
        raise ValueError(f"unknown webhook event {event_type!r}")
    q = select(WebhookEndpoint.id, WebhookEndpoint.events).where(WebhookEndpoint.active)
    if endpoint_ids is not None:
        q = q.where(WebhookEndpoint.id.in_(endpoint_ids))
    targets = [
        eid
        for eid, events in session.execute(q)
        if event_type == TEST_EVENT or event_type in events
    ]
    if not targets:
        return 0
    msg_id = f"msg_{key or uuid.uuid4().hex}"
    if key is not None:
        sent = set(
            session.scalars(
                select(WebhookDelivery.endpoint_id).where(
                    WebhookDelivery.msg_id == msg_id, WebhookDelivery.endpoint_id.in_(targets)
                )
            )
        )
        targets = [t for t in targets if t not in sent]
    body = payload(event_type, data)
    now = utcnow()
    for endpoint_id in targets:
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint_id,
                msg_id=msg_id,
                event_type=event_type,
                payload=body,
                next_attempt_at=now,
                created_at=now,
            )
        )
    session.flush()
    return len(targets)
