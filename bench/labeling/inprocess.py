"""In-process CPU cost of the labeling loop: the ASGI app called directly, no HTTP server.

    python -m bench.labeling.inprocess                       # 2-request flow, PostgreSQL
    python -m bench.labeling.inprocess --flow combined       # POST .../judgments?next=1
    python -m bench.labeling.inprocess --profile             # + self time by layer (cProfile)
    python -m bench.labeling.inprocess --sqlite              # the embedded backend
    python -m bench.labeling.inprocess --metrics-cost        # /metrics middleware on vs off

The robust measure on a shared machine: process CPU time per judgment counts only this
process's work, whatever else the machine runs. Requests are raw ASGI calls (no HTTP client
library), one after the other on uvloop, after a warm-up; the cost of those calls is measured
separately with a no-op app and subtracted, so the result is the server's CPU per judgment
(web framework, auth, validation, driver, our code; PostgreSQL's own CPU is reported apart).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/prefloop_inproc"

LAYERS = (  # first match wins: path fragment -> layer
    ("/sqlalchemy/", "sqlalchemy"),
    ("/psycopg_pool/", "psycopg"),
    ("/psycopg/", "psycopg"),
    ("/fastapi/", "fastapi"),
    ("/starlette/", "starlette"),
    ("/pydantic", "pydantic"),
    ("/aiosqlite/", "sqlite driver"),
    ("/sqlite3/", "sqlite driver"),
    ("/uvloop/", "event loop"),
    ("/asyncio/", "event loop"),
    ("/selectors.py", "event loop"),
    ("/anyio/", "anyio"),
    ("/greenlet", "sqlalchemy"),
    ("/itsdangerous/", "auth (cookies, hashing)"),
    ("/app/", "prefloop app"),
    ("/bench/", "bench client"),
)


def layer_of(filename: str, func: str) -> str:
    for frag, name in LAYERS:
        if frag in filename:
            return name
    if filename == "~":  # C functions: attribute by name
        if "sqlite3" in func:
            return "sqlite driver"
        if "psycopg" in func or "pq" in func:
            return "psycopg"
        if "orjson" in func:
            return "json (orjson)"
        if "json" in func:
            return "json (stdlib)"
        if "select" in func or "poll" in func or "uvloop" in func:
            return "event loop"
        if "pydantic" in func or "validate" in func:
            return "pydantic"
        return "builtins"
    return "other python"


class AsgiClient:
    """Calls an ASGI app directly with the smallest possible request/response plumbing."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.auth = f"Bearer {token}".encode()

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        raw = json.dumps(body).encode() if body is not None else b""
        p, _, q = path.partition("?")
        headers = [(b"host", b"bench"), (b"authorization", self.auth)]
        if body is not None:
            headers += [(b"content-type", b"application/json")]
            headers += [(b"content-length", str(len(raw)).encode())]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": p,
            "raw_path": p.encode(),
            "query_string": q.encode(),
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("bench", 80),
            "root_path": "",
            "state": {},
        }
        sent = False
        out: dict[str, Any] = {"status": 0, "body": b""}

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return out["status"], out["body"]


async def _noop_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b'{"task_id": 1, "candidates": []}'})


async def loop(clients: list[AsgiClient], n: int, flow: str) -> dict[str, int]:
    """n judgments by clients in turn; returns status counts."""
    statuses: dict[str, int] = defaultdict(int)
    pending: dict[int, dict] = {}  # combined flow: each labeler's next task
    for i in range(n):
        c = clients[i % len(clients)]
        task = pending.pop(i % len(clients), None)
        if task is None:
            status, content = await c.request("GET", "/api/v1/tasks/next")
            statuses[f"next {status}"] += 1
            if status != 200:
                continue
            task = json.loads(content)
        body = {"ranking": [[x["id"]] for x in task["candidates"]], "time_spent_ms": 1000}
        path = f"/api/v1/tasks/{task['task_id']}/judgments"
        if flow == "combined":
            path += "?next=1"
        status, content = await c.request("POST", path, body)
        statuses[f"submit {status}"] += 1
        if flow == "combined" and status in (200, 201):
            nxt = json.loads(content).get("next")
            if nxt:
                pending[i % len(clients)] = nxt
    return dict(statuses)


async def client_cost(n: int, flow: str) -> float:
    """CPU seconds the request plumbing itself costs for n judgments (no-op app)."""
    c = AsgiClient(_noop_app, "x")
    t0 = time.process_time()
    for _ in range(n):
        if flow != "combined":
            _, content = await c.request("GET", "/api/v1/tasks/next")
            json.loads(content)
        await c.request("POST", "/api/v1/tasks/1/judgments", {"ranking": [[1], [2]], "t": 1})
    return time.process_time() - t0


def prepare(url: str, labelers: int, tasks: int) -> list[str]:
    from bench.labeling.seed import recreate_database, seed

    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        os.environ["PREFLOOP_DATABASE_URL"] = url
        from app.ops.migrate import upgrade

        upgrade(url)
        return seed(url, labelers, tasks, k=2, required=3)
    recreate_database(url)
    return seed(url, labelers, tasks, k=2, required=3)


async def run(a: argparse.Namespace, tokens: list[str], metrics: bool = True) -> dict[str, Any]:
    from app.main import create_app
    from app.metrics.process import MetricsMiddleware

    app = create_app()
    if not metrics:  # the stack is built on the first call: drop the middleware before it
        app.user_middleware = [m for m in app.user_middleware if m.cls is not MetricsMiddleware]
    clients = [AsgiClient(app, t) for t in tokens]
    async with app.router.lifespan_context(app):
        warm = await loop(clients, a.warmup, a.flow)
        profiler = cProfile.Profile(time.process_time) if a.profile else None  # CPU, not wall
        w0, c0 = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        statuses = await loop(clients, a.n, a.flow)
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    plumbing = await client_cost(a.n, a.flow)
    judged = sum(v for k, v in statuses.items() if k in ("submit 201", "submit 200"))
    result: dict[str, Any] = {
        "flow": a.flow,
        "backend": "sqlite" if a.sqlite else "postgresql",
        "judgments": judged,
        "statuses": statuses,
        "warmup_statuses": warm,
        "cpu_ms_per_judgment_total": round(1000 * cpu / max(judged, 1), 3),
        "client_plumbing_ms_per_judgment": round(1000 * plumbing / max(judged, 1), 3),
        "server_cpu_ms_per_judgment": round(1000 * (cpu - plumbing) / max(judged, 1), 3),
        "wall_ms_per_judgment": round(1000 * wall / max(judged, 1), 3),
        "profiled": bool(profiler),
    }
    if profiler:
        result["layers"] = by_layer(profiler, judged)
        if a.top:
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(a.top)
    return result


def by_layer(profiler: cProfile.Profile, judged: int) -> dict[str, Any]:
    stats = pstats.Stats(profiler)
    self_time: dict[str, float] = defaultdict(float)
    calls = 0
    for (filename, _line, func), (_cc, nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        self_time[layer_of(filename, func)] += tt
        calls += nc
    total = sum(self_time.values())
    return {
        "python_calls_per_judgment": round(calls / max(judged, 1)),
        "self_time_share": {
            k: round(v / total, 3) for k, v in sorted(self_time.items(), key=lambda kv: -kv[1])
        },
        "profiled_ms_per_judgment": round(1000 * total / max(judged, 1), 3),
    }


async def middleware_cost(requests: int) -> float:
    """CPU seconds per request MetricsMiddleware adds around a no-op app (min of 5 tries)."""
    from app.metrics.process import MetricsMiddleware

    class Route:
        path = "/api/v1/tasks/{task_id}/judgments"

    async def routed(scope: Any, receive: Any, send: Any) -> None:
        scope["route"] = Route
        await _noop_app(scope, receive, send)

    async def cpu(app: Any) -> float:
        c = AsgiClient(app, "x")
        t0 = time.process_time()
        for _ in range(requests):
            await c.request("POST", "/api/v1/tasks/1/judgments", {"ranking": [[1], [2]]})
        return time.process_time() - t0

    plain, wrapped = MetricsMiddleware(routed), []
    bare = []
    for _ in range(5):
        bare.append(await cpu(routed))
        wrapped.append(await cpu(plain))
    return (min(wrapped) - min(bare)) / requests


def metrics_cost(a: argparse.Namespace, tokens: list[str]) -> dict[str, Any]:
    """Server CPU per judgment without and with MetricsMiddleware, in alternating rounds on one
    database, with PROMETHEUS_MULTIPROC_DIR set as `prefloop serve` sets it (mmap-backed)."""
    import uvloop

    cpu: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(a.rounds):
        for mode in ("off", "on"):
            r = uvloop.run(run(a, tokens, metrics=mode == "on"))
            cpu[mode].append(r["server_cpu_ms_per_judgment"])
            print(mode, r["server_cpu_ms_per_judgment"], r["statuses"], file=sys.stderr)
    best = {k: min(v) for k, v in cpu.items()}
    per_request_ms = 1000 * uvloop.run(middleware_cost(20_000))
    per_judgment_ms = per_request_ms * (1 if a.flow == "combined" else 2)
    return {
        "middleware_ms_per_request_isolated": round(per_request_ms, 4),
        "middleware_pct_of_server_cpu_isolated": round(100 * per_judgment_ms / best["off"], 2),
        "flow": a.flow,
        "backend": "sqlite" if a.sqlite else "postgresql",
        "server_cpu_ms_per_judgment": cpu,
        "best_off": best["off"],
        "best_on": best["on"],
        "overhead_pct_best": round(100 * (best["on"] / best["off"] - 1), 2),
        "overhead_pct_median": round(
            100
            * (
                sorted(cpu["on"])[len(cpu["on"]) // 2] / sorted(cpu["off"])[len(cpu["off"]) // 2]
                - 1
            ),
            2,
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", default=os.environ.get("PREFLOOP_INPROC_DATABASE_URL", DEFAULT_URL))
    p.add_argument("--sqlite", action="store_true", help="a fresh SQLite file instead")
    p.add_argument("--flow", choices=["two", "combined"], default="two")
    p.add_argument("-n", type=int, default=1000, help="measured judgments")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--labelers", type=int, default=64)
    p.add_argument("--profile", action="store_true", help="cProfile self time by layer")
    p.add_argument("--top", type=int, default=0, help="with --profile: print the N costliest")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--metrics-cost",
        action="store_true",
        help="alternate rounds without and with the metrics middleware (multi-process mode)",
    )
    p.add_argument("--rounds", type=int, default=3, help="with --metrics-cost: rounds of each")
    a = p.parse_args()
    if a.sqlite:
        a.url = f"sqlite:///{tempfile.mkdtemp(prefix='prefloop-inproc-')}/bench.db"
    os.environ.update(
        PREFLOOP_DATABASE_URL=a.url,
        PREFLOOP_ENV="production",
        PREFLOOP_SECRET_KEY="inprocess-benchmark-secret-0123456789",
    )
    if a.metrics_cost:  # before anything imports prometheus_client
        from app.metrics.multiproc import prepare_multiproc_dir

        prepare_multiproc_dir(Path(tempfile.mkdtemp(prefix="prefloop-metrics-")))
    rounds = 2 * a.rounds if a.metrics_cost else 1
    tasks = rounds * (a.n + a.warmup) // 3 + a.labelers + 10
    tokens = prepare(a.url, a.labelers, tasks)
    import uvloop

    if a.metrics_cost:
        result = metrics_cost(a, tokens)
    else:
        result = uvloop.run(run(a, tokens))
    print(json.dumps(result, indent=2))
    if a.json:
        a.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
