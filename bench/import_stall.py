"""How long an import stalls other requests: /healthz latency while a comparisons file is
imported over HTTP, against the same server idle.

Starts uvicorn (one worker) on a fresh SQLite database, polls /healthz back to back from a
thread, and posts a generated JSONL file of `--mb` megabytes to /api/v1/import/comparisons.
Reports the worst and the 99th percentile /healthz latency during the import and while idle.
`--root` serves another checkout (e.g. an extracted `git archive main`) for a before/after.

    python bench/import_stall.py --mb 1.5 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def comparisons(mb: float, salt: str) -> bytes:
    rows, size, i = [], 0, 0
    while size < mb * 1_000_000:
        row = json.dumps(
            {
                "prompt": f"{salt} question {i}: " + "how does this work? " * 8,
                "completions": [f"answer {i}.{j} " + "some text " * 12 for j in range(2)],
            }
        )
        rows.append(row)
        size += len(row) + 1
        i += 1
    return ("\n".join(rows) + "\n").encode()


def poll(url: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            t = time.perf_counter()
            client.get(url + "/healthz")
            out.append(time.perf_counter() - t)


def measure(
    url: str, token: str, body: bytes | None, seconds: float = 2.0, took: list | None = None
) -> list[float]:
    latencies: list[float] = []
    stop = threading.Event()
    poller = threading.Thread(target=poll, args=(url, stop, latencies))
    poller.start()
    started = time.perf_counter()
    if body is None:
        time.sleep(seconds)
    else:
        r = httpx.post(
            url + "/api/v1/import/comparisons",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
            timeout=600,
        )
        assert r.status_code == 201, r.text
    if took is not None:
        took.append(time.perf_counter() - started)
    stop.set()
    poller.join()
    return latencies


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=1.5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout to serve")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="prefloop-bench-"))
    root = args.root.resolve()
    env = {
        **os.environ,
        "PREFLOOP_DATA_DIR": str(tmp),
        "PREFLOOP_DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
        "PREFLOOP_SECRET_KEY": "bench-secret-key-not-for-production",
        "PYTHONPATH": str(root),
    }
    run = [sys.executable, "-c"]
    subprocess.run(
        [*run, "from app.ops.migrate import upgrade; upgrade()"], env=env, cwd=root, check=True
    )
    token = subprocess.run(
        [
            *run,
            "from app.db import session_scope\n"
            "from app.users.service import create_user, create_token\n"
            "with session_scope() as s:\n"
            "    create_user(s, 'bench', 'admin', 'password123')\n"
            "    print(create_token(s, 'bench', 'bench')[1])",
        ],
        env=env,
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = 8765
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--port", str(port),
         "--log-level", "warning"],
        env=env,
        cwd=root,
    )  # fmt: skip
    try:
        for _ in range(1200):  # a loaded machine can take a minute to start it
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        measure(url, token, comparisons(0.1, "warmup"))
        idle, busy, took = [], [], []
        for i in range(args.repeats):
            idle += measure(url, token, None)
            busy += measure(url, token, comparisons(args.mb, f"r{i}"), took=took)
    finally:
        server.terminate()
        server.wait(10)

    def row(name: str, xs: list[float]) -> str:
        p99 = statistics.quantiles(xs, n=100)[98] if len(xs) > 1 else xs[0]
        ms = [x * 1000 for x in (statistics.median(xs), p99, max(xs))]
        return f"| {name} | {len(xs)} | " + " | ".join(f"{m:.1f}" for m in ms) + " |"

    took_s = statistics.median(took)
    print(f"root {root}, {args.mb} MB x {args.repeats}, an import took {took_s:.2f} s (median)")
    print("| /healthz | requests | median ms | p99 ms | worst ms |\n|---|---|---|---|---|")
    print(row("idle", idle))
    print(row(f"during a {args.mb} MB import", busy))


if __name__ == "__main__":
    main()
