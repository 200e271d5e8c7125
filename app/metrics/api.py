"""GET /metrics in the Prometheus text format.

Read with the bearer token PREFLOOP_METRICS_TOKEN (what a Prometheus scrape config sends) or any
admin credential; without either: 401, with another user's credential: 403. Unset token: only
admins can read it. Per-process metrics of every `serve --workers N` process are merged from
PROMETHEUS_MULTIPROC_DIR; the database gauges are read once per scrape.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from app.auth.deps import SessionDep, _authenticate
from app.config import get_settings
from app.metrics import snapshot
from app.metrics.multiproc import MULTIPROC_ENV
from app.models import Role
from app.ops.errors import API_ERRORS

ROLES = frozenset({Role.admin, "metrics-token"})


async def metrics_reader(request: Request) -> None:
    """The metrics token, or else an admin (the normal authentication, 401/403)."""
    token = get_settings().metrics_token
    scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
    if token and scheme.lower() == "bearer":
        if hmac.compare_digest(supplied.strip().encode(), token.encode()):
            return
    await _authenticate(request, frozenset({Role.admin}))


metrics_reader.roles = ROLES  # type: ignore[attr-defined]  # route x role test reads it

router = APIRouter(tags=["ops"], dependencies=[Depends(metrics_reader)], responses=API_ERRORS)


class _Forward:
    """This process's own metrics (single-process mode), for a per-scrape registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


@router.get("/metrics", response_class=Response)
async def metrics(session: SessionDep) -> Response:
    """Every metric, in the Prometheus text exposition format."""
    snap = await session.run_sync(snapshot.read)
    await session.commit()
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)
    else:
        registry.register(_Forward())
    registry.register(snapshot.SnapshotCollector(snap))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
