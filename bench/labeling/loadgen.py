"""Simulated labelers: each loops POST .../judgments?next=1 (the combined route, as /label does)
or GET /api/v1/tasks/next -> POST .../judgments (--flow two) as fast as it can.

Closed loop by default (no think time: measures saturation throughput); `--rate` paces the whole
fleet to a fixed number of judgments per second instead (latency at a given load). Labelers can be
split over several client processes; the result is one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson


class RawConnection:
    """Minimal HTTP/1.1 keep-alive client (one connection per labeler): far less client CPU."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: object = None
    ) -> tuple[int, bytes]:
        reused = self.writer is not None
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        raw = orjson.dumps(body) if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
        try:
            return await self._exchange(head.encode() + b"\r\n" + raw)
        except (OSError, asyncio.IncompleteReadError):
            await self.close()
            if not reused:
                raise
        # the server closed an idle keep-alive connection (uvicorn: after 5 s): like any HTTP
        # client, retry once on a fresh one (both routes are safe to repeat)
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            return await self._exchange(head.encode() + b"\r\n" + raw)
        except (OSError, asyncio.IncompleteReadError):
            await self.close()
            raise

    async def _exchange(self, data: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(data)
        status_line = await self.reader.readline()
        if not status_line:
            await self.close()
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length) if length else b""

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


Send = Callable[[str, str, object], Awaitable[tuple[int, bytes]]]


def httpx_sender(client: httpx.AsyncClient, token: str) -> Send:
    headers = {"Authorization": f"Bearer {token}"}

    async def send(method: str, path: str, body: object = None) -> tuple[int, bytes]:
        r = await client.request(method, path, json=body, headers=headers)
        return r.status_code, r.content

    return send


def raw_sender(url: str, token: str) -> Send:
    u = urlsplit(url)
    conn = RawConnection(u.hostname or "127.0.0.1", u.port or 80)
    headers = {"Authorization": f"Bearer {token}"}

    async def send(method: str, path: str, body: object = None) -> tuple[int, bytes]:
        return await conn.request(method, path, headers, body)

    return send


async def _labeler(
    send: Send,
    t_start: float,
    t_end: float,
    pace: asyncio.Queue[None] | None,
    out: dict[str, list[float] | int],
    flow: str = "two",
) -> None:
    """flow "two": GET next, then POST the judgment. flow "combined": POST ...?next=1, which
    answers with the next task (a GET only when the labeler holds none)."""
    suffix = "?next=1" if flow == "combined" else ""
    pending: dict | None = None
    while time.monotonic() < t_end:
        if pace is not None:
            try:
                await asyncio.wait_for(pace.get(), timeout=max(0.01, t_end - time.monotonic()))
            except TimeoutError:
                return
        t0 = t1 = time.monotonic()
        task = pending
        pending = None
        if task is None:
            try:
                status, content = await send("GET", "/api/v1/tasks/next", None)
            except (OSError, asyncio.IncompleteReadError, httpx.TransportError):
                status, content = 599, b""  # counted as an error; the connection is reopened
            t1 = time.monotonic()
            if status == 204:
                out["empty"] += 1  # type: ignore[operator]
                await asyncio.sleep(0.05)
                continue
            if status != 200:
                out["errors"] += 1  # type: ignore[operator]
                out.setdefault(f"status_{status}", 0)
                out[f"status_{status}"] += 1  # type: ignore[operator]
                continue
            task = orjson.loads(content)
            if t0 >= t_start:
                out["next_ms"].append((t1 - t0) * 1000)  # type: ignore[union-attr]
        body = {"ranking": [[c["id"]] for c in task["candidates"]], "time_spent_ms": 1000}
        try:
            status, content = await send(
                "POST", f"/api/v1/tasks/{task['task_id']}/judgments{suffix}", body
            )
        except (OSError, asyncio.IncompleteReadError, httpx.TransportError):
            status, content = 599, b""
        t2 = time.monotonic()
        if flow == "combined" and status in (200, 201):
            pending = orjson.loads(content).get("next")
        if t0 < t_start:  # warm-up: not measured
            continue
        out["submit_ms"].append((t2 - t1) * 1000)  # type: ignore[union-attr]
        if status == 201:
            out["judgments"] += 1  # type: ignore[operator]
        else:
            out["errors"] += 1  # type: ignore[operator]
            out.setdefault(f"status_{status}", 0)
            out[f"status_{status}"] += 1  # type: ignore[operator]


async def _pacer(queue: asyncio.Queue[None], rate: float, t_end: float) -> None:
    """Release `rate` loop starts per second (open-loop arrivals, evenly spaced)."""
    interval, t = 1.0 / rate, time.monotonic()
    while t < t_end:
        queue.put_nowait(None)
        t += interval
        await asyncio.sleep(max(0.0, t - time.monotonic()))


async def run_fleet(
    url: str,
    tokens: list[str],
    warmup: float,
    duration: float,
    rate: float | None,
    client_kind: str = "raw",
    flow: str = "two",
) -> dict:
    out: dict[str, list[float] | int] = {
        "next_ms": [],
        "submit_ms": [],
        "judgments": 0,
        "errors": 0,
        "empty": 0,
    }
    limits = httpx.Limits(max_connections=len(tokens), max_keepalive_connections=len(tokens))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        now = time.monotonic()
        t_start, t_end = now + warmup, now + warmup + duration
        pace: asyncio.Queue[None] | None = asyncio.Queue() if rate else None
        senders = [
            raw_sender(url, t) if client_kind == "raw" else httpx_sender(client, t) for t in tokens
        ]
        jobs = [_labeler(s, t_start, t_end, pace, out, flow) for s in senders]
        if pace is not None and rate:
            jobs.append(_pacer(pace, rate, t_end))
        cpu0: float | None = None

        async def cpu_mark() -> None:
            nonlocal cpu0
            await asyncio.sleep(warmup)
            cpu0 = _cpu()

        await asyncio.gather(cpu_mark(), *jobs)
        out["client_cpu_s"] = _cpu() - (cpu0 or 0.0)
        out["window_s"] = time.monotonic() - t_start
    return out


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _process(args: tuple, conn) -> None:  # type: ignore[no-untyped-def]
    url, tokens, warmup, duration, rate, use_uvloop, client_kind, flow = args
    if use_uvloop:
        import uvloop

        uvloop.install()
    conn.send(asyncio.run(run_fleet(url, tokens, warmup, duration, rate, client_kind, flow)))
    conn.close()


def run(
    url: str,
    tokens: list[str],
    processes: int = 1,
    warmup: float = 3.0,
    duration: float = 15.0,
    rate: float | None = None,
    use_uvloop: bool = True,
    client_kind: str = "raw",
    flow: str = "two",
) -> dict:
    """Run the fleet over `processes` client processes; merged summary."""
    shares = [tokens[i::processes] for i in range(processes)]
    pipes, procs = [], []
    for share in shares:
        parent, child = mp.Pipe(duplex=False)
        share_rate = rate * len(share) / len(tokens) if rate else None
        p = mp.Process(
            target=_process,
            args=((url, share, warmup, duration, share_rate, use_uvloop, client_kind, flow), child),
        )
        p.start()
        pipes.append(parent)
        procs.append(p)
    parts = []
    for pipe, proc in zip(pipes, procs, strict=True):
        while not pipe.poll(0.5):
            if not proc.is_alive() and not pipe.poll(0.1):
                raise RuntimeError(f"load-generator process exited with {proc.exitcode}")
        parts.append(pipe.recv())
    for p in procs:
        p.join()
    nxt = [v for part in parts for v in part["next_ms"]]
    sub = [v for part in parts for v in part["submit_ms"]]
    both = nxt + sub
    window = max(part["window_s"] for part in parts)
    judgments = sum(part["judgments"] for part in parts)
    return {
        "labelers": len(tokens),
        "client": client_kind + ("+uvloop" if use_uvloop else ""),
        "flow": flow,
        "requests": len(nxt) + len(sub),
        "client_processes": processes,
        "rate_target": rate,
        "window_s": round(window, 2),
        "judgments": judgments,
        "judgments_per_s": round(judgments / window, 1),
        "errors": sum(part["errors"] for part in parts),
        "error_statuses": {
            k: sum(part.get(k, 0) for part in parts)
            for k in sorted({k for part in parts for k in part if k.startswith("status_")})
        },
        "empty": sum(part["empty"] for part in parts),
        "client_cpu_s": round(sum(part["client_cpu_s"] for part in parts), 2),
        "latency_ms": {
            name: {
                "p50": round(percentile(vals, 0.50), 2),
                "p90": round(percentile(vals, 0.90), 2),
                "p99": round(percentile(vals, 0.99), 2),
                "max": round(max(vals, default=float("nan")), 2),
            }
            for name, vals in (("next", nxt), ("submit", sub), ("request", both))
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", default="http://127.0.0.1:8765")
    p.add_argument("--tokens", type=Path, default=Path("bench/labeling/.tokens.json"))
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--rate", type=float, default=None, help="judgments/s for the whole fleet")
    p.add_argument("--no-uvloop", action="store_true")
    p.add_argument("--client", choices=["raw", "httpx"], default="raw")
    p.add_argument("--flow", choices=["two", "combined"], default="combined")
    a = p.parse_args()
    tokens = json.loads(a.tokens.read_text())[: a.concurrency]
    if len(tokens) < a.concurrency:
        sys.exit(f"only {len(tokens)} tokens in {a.tokens}; seed more labelers")
    result = run(
        a.url, tokens, a.processes, a.warmup, a.duration, a.rate, not a.no_uvloop, a.client, a.flow
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
