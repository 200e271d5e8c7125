"""Metrics each web process records itself: requests by route template, /v1 generation.

With PROMETHEUS_MULTIPROC_DIR set (`prefloop serve` sets it) prometheus-client keeps these in
memory-mapped files per process and `/metrics` merges them, so any worker answers for all.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "prefloop_http_requests",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "prefloop_http_request_duration_seconds",
    "Time to the end of the response, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0),
)
GEN_TOKENS = Counter(
    "prefloop_generation_tokens",
    "Completion tokens generated for /v1 (streams: one per streamed delta)",
)
GEN_SECONDS = Counter(
    "prefloop_generation_seconds",
    "Seconds generation threads spent generating for /v1",
)
GEN_QUEUED = Gauge(
    "prefloop_generation_queue_depth",
    "/v1 generations waiting for a slot",
    multiprocess_mode="livesum",
)
GEN_RUNNING = Gauge(
    "prefloop_generation_running",
    "/v1 generations holding a slot",
    multiprocess_mode="livesum",
)

UNMATCHED = "<unmatched>"


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class MetricsMiddleware:
    """Counts every HTTP request and times it to its last body byte, labelled by the matched
    route's template (`/api/v1/tasks/{task_id}/judgments`), never the raw path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def _observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        pair = self._children.get(key)
        if pair is None:  # .labels() is the slow part; resolve each combination once
            pair = (REQUESTS.labels(*key), LATENCY.labels(method, route))
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self._observe(method, _route_of(scope), status, time.perf_counter() - started)


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
