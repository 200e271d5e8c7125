"""Endpoints: create (the secret is returned once), enable/disable, test-send, recent deliveries."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.models import WebhookDelivery, WebhookEndpoint
from app.webhooks.events import EVENTS, TEST_EVENT, emit
from app.webhooks.urls import BadUrl, check_url
from ml.limits import check_no_nul

MAX_DESCRIPTION = 200


class WebhookError(ValueError):
    """A request the admin must correct; the message says what."""


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class Created:
    endpoint: WebhookEndpoint
    secret: str  # shown once


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (the Standard Webhooks secret format)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_endpoint(
    session: Session,
    url: str,
    events: list[str],
    description: str = "",
    user_id: int | None = None,
) -> Created:
    settings = get_settings()
    try:
        url = check_url(url, settings.webhook_allow_private)
    except BadUrl as e:
        raise WebhookError(str(e)) from None
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise WebhookError(f"unknown events: {', '.join(unknown)}; known: {', '.join(EVENTS)}")
    if not events:
        raise WebhookError("choose at least one event")
    description = description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise WebhookError(f"the description is longer than {MAX_DESCRIPTION} characters")
    try:
        check_no_nul(description, "the description")
    except ValueError as e:
        raise WebhookError(str(e)) from None
    count = session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0
    if count >= settings.webhook_max_endpoints:
        raise WebhookError(
            f"at most {settings.webhook_max_endpoints} endpoints (PREFLOOP_WEBHOOK_MAX_ENDPOINTS)"
        )
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=url,
        description=description,
        secret=secret,
        events=[e for e in EVENTS if e in set(events)],
        created_by_id=user_id,
    )
    session.add(endpoint)
    session.flush()
    return Created(endpoint, secret)


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} does not exist")
    return endpoint


def set_active(session: Session, endpoint_id: int, active: bool) -> WebhookEndpoint:
    """Disabled endpoints get no new events; their pending deliveries wait until re-enabled."""
    endpoint = get_endpoint(session, endpoint_id)
    endpoint.active = active
    session.flush()
    return endpoint


def send_test(session: Session, endpoint_id: int) -> int:
    """Queue a `webhook.test` message for one endpoint (the worker sends it)."""
    endpoint = get_endpoint(session, endpoint_id)
    if not endpoint.active:
        raise WebhookError("the endpoint is disabled; enable it first")
    return emit(session, TEST_EVENT, {"endpoint_id": endpoint.id}, endpoint_ids=[endpoint.id])


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def recent_deliveries(session: Session, limit: int = 50) -> list[WebhookDelivery]:
    q = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    return list(session.scalars(q))
