"""Labeling-loop benchmark: the app (uvicorn, as in production) against two baselines in the same
run: a minimal ASGI app over the same pool and statements, and the bare SQL of a vote (pgbench).

    python -m bench.labeling.run                      # seed if needed, then every measurement
    python -m bench.labeling.run --workers 1 --processes 2 --duration 20
    python -m bench.labeling.run --only app --flows combined --rate 100   # open loop

Every side runs at the same concurrency against the same freshly reset PostgreSQL database, and
CPU seconds are sampled per process group (server, client, postgres, whole machine) so the cost
of the load generator and other users of the machine are visible next to the result.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.labeling import loadgen
from bench.labeling.cpu import Sampler
from bench.labeling.loadgen import percentile
from bench.labeling.seed import recreate_database, seed

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/prefloop_bench"


def _engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(make_url(url).set(drivername="postgresql+psycopg"))


def ensure_seeded(url: str, tokens_path: Path, labelers: int, tasks: int, reseed: bool) -> int:
    """Seed unless the database and token file already match; returns the task count."""
    if not reseed and tokens_path.exists() and len(json.loads(tokens_path.read_text())) >= labelers:
        try:
            with _engine(url).connect() as conn:
                n = conn.scalar(text("SELECT count(*) FROM comparison_tasks"))
            if n and n >= tasks:
                return int(n)
        except Exception:  # missing database: seed it
            pass
    print(f"seeding {labelers} labelers and {tasks} tasks ...", file=sys.stderr)
    recreate_database(url)
    tokens_path.write_text(json.dumps(seed(url, labelers, tasks, k=2, required=3)))
    return tasks


def reset(url: str) -> None:
    """Forget every judgment and lease; reopen every task."""
    with _engine(url).begin() as conn:
        conn.execute(text("TRUNCATE judgments, assignments RESTART IDENTITY"))
        conn.execute(text("UPDATE comparison_tasks SET judgment_count = 0, status = 'open'"))
    with _engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def analyze(url: str) -> None:
    with _engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE assignments, judgments, comparison_tasks"))


def _backends(url: str) -> str:
    """Command-line marker of the PostgreSQL backends serving the bench database."""
    return f" {make_url(url).username or 'postgres'} {make_url(url).database} "


def start_server(
    url: str, port: int, workers: int, log: Path, baseline: bool = False
) -> subprocess.Popen[bytes]:
    """`prefloop serve`, the production entry point, with production settings (or the minimal
    ASGI baseline under the same uvicorn, workers and pool sizes)."""
    env = {
        **os.environ,
        "PREFLOOP_DATABASE_URL": url,
        "PREFLOOP_ENV": "production",
        "PREFLOOP_SECRET_KEY": secrets.token_urlsafe(32),
        "PREFLOOP_WEB_WORKERS": str(workers),
    }
    if baseline:
        # the same uvicorn settings as `prefloop serve` (info: with access log)
        cmd = [sys.executable, "-m", "uvicorn", "bench.labeling.baseline:app", "--log-level"]
        cmd += ["info", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    else:
        cmd = [sys.executable, "-c", "from app.cli import main; main()", "serve"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            sys.exit(f"server exited:\n{log.read_text()[-3000:]}")
    sys.exit("server did not start")


def wait_booted(log: Path, workers: int, timeout: float = 300) -> None:
    """Wait until every worker has finished starting: /healthz answers as soon as ONE worker is
    up, and a worker still importing would have its start-up CPU booked to the run (on a busy
    machine that takes tens of seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count("Application startup complete.") >= workers:
            return
        time.sleep(0.25)
    sys.exit(f"{workers} workers did not start in {timeout} s:\n{log.read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def bench_app(
    a: argparse.Namespace, tokens: list[str], tmp: Path, flow: str, baseline: bool = False
) -> dict:
    port = a.port
    log = tmp / f"server-{flow}-{'baseline' if baseline else 'app'}.log"
    proc = start_server(a.url, port, a.workers, log, baseline)
    wait_booted(log, a.workers)
    # reset() leaves assignments and judgments empty and analyzed as empty, so until an
    # autoanalyze (a minute away) PostgreSQL plans their lookups as scans of a tiny table, which
    # the run outgrows within seconds. A live system has real statistics: take them during the
    # warm-up, with some leases and judgments in the tables.
    threading.Timer(a.warmup * 0.6, analyze, [a.url]).start()
    try:
        sampler = Sampler({"server": proc.pid, "client": os.getpid(), "postgres": _backends(a.url)})
        sampler.start()
        result = loadgen.run(
            f"http://127.0.0.1:{port}",
            tokens[: a.concurrency],
            a.processes,
            a.warmup,
            a.duration,
            a.rate,
            not a.no_uvloop,
            a.client,
            flow,
        )
        result["cpu_s"] = sampler.result()  # includes warm-up, like the window below
        result["cpu_window_s"] = round(a.warmup + result["window_s"], 2)
        # CPU was sampled over warm-up + window: count the judgments of both (rate x time)
        judged = result["judgments_per_s"] * result["cpu_window_s"]
        result["cost"] = cpu_cost(result, judged)
        result["cpu_ms_per_judgment"] = {
            k: round(1000 * v / max(judged, 1), 3)
            for k, v in result["cpu_s"].items()
            if not k.startswith("machine")
        }
    finally:
        stop_server(proc)
    return result


def bench_sql(a: argparse.Namespace, ntasks: int, tmp: Path) -> dict:
    """pgbench running vote.sql at the same concurrency; latency percentiles from its log."""
    u = make_url(a.url)
    logdir = tmp / "pgbench"
    logdir.mkdir()
    cmd = ["pgbench", "-n", "-M", "prepared", "-c", str(a.concurrency), "-j", "2"]
    cmd += ["-T", str(int(a.duration)), "-D", f"ntasks={ntasks}", "-f", str(HERE / "vote.sql")]
    cmd += ["-l", "--log-prefix", str(logdir / "log")]
    cmd += ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    cmd += [u.database or "prefloop_bench"]
    sampler = Sampler({"client": os.getpid(), "postgres": _backends(a.url)}).start()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu = sampler.result()
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = [
        int(line.split()[2]) / 1000
        for f in logdir.iterdir()
        for line in f.read_text().splitlines()
        if line.strip()
    ]
    return {
        "tps": round(tps, 1),
        "transactions": len(lat),
        "latency_ms": {
            "p50": round(percentile(lat, 0.5), 2),
            "p99": round(percentile(lat, 0.99), 2),
        },
        "cpu_s": cpu,
        "cpu_window_s": float(int(a.duration)),
        "cost": cpu_cost({"cpu_s": cpu}, len(lat)),
    }


def cpu_cost(part: dict, count: float) -> dict:
    """CPU ms per judgment (ours: server + client + postgres) and what 2 idle cores would give."""
    cpu = part["cpu_s"]
    ours = sum(v for k, v in cpu.items() if not k.startswith("machine"))
    ms = 1000 * ours / max(count, 1)
    others = cpu["machine_busy"] - ours
    return {
        "cpu_ms_per_judgment": round(ms, 2),
        "projected_per_s_on_2_idle_cores": round(2000 / ms, 1) if ms else None,
        "other_users_cpu_share": round(others / max(cpu["machine_capacity"], 1e-9), 2),
    }


def summary(runs: dict[str, dict], sql: dict | None) -> str:
    lines = []
    for name, app in runs.items():
        lat = app["latency_ms"]
        per = app["cpu_ms_per_judgment"]
        lines.append(
            f"{name:<18}: {app['judgments_per_s']:8.1f} judgments/s  request p50 "
            f"{lat['request']['p50']:.1f} ms  p99 {lat['request']['p99']:.1f} ms  "
            f"({app['requests']} requests)  errors {app['errors']}"
        )
        lines.append(
            f"{'':<20}CPU ms per judgment: server {per['server']:.2f}  client "
            f"{per['client']:.2f}  postgres {per['postgres']:.2f}; {app['cost']}"
        )
    if sql:
        lines.append(
            f"{'pgbench vote.sql':<18}: {sql['tps']:8.1f} votes/s      p50 "
            f"{sql['latency_ms']['p50']:.1f} ms  p99 {sql['latency_ms']['p99']:.1f} ms"
        )
        lines.append(f"{'':<20}cpu s {sql['cpu_s']} over {sql['cpu_window_s']} s; {sql['cost']}")
    base = runs.get("baseline combined")
    for name, app in runs.items():
        if sql:
            a = app["cost"]["projected_per_s_on_2_idle_cores"]
            b = sql["cost"]["projected_per_s_on_2_idle_cores"]
            lines.append(
                f"{name} / pgbench: {app['judgments_per_s'] / sql['tps']:.3f} measured, "
                f"{a / b:.3f} by CPU cost"
            )
        if base and app is not base:
            lines.append(
                f"{name} / ASGI baseline: {app['judgments_per_s'] / base['judgments_per_s']:.3f}"
                f" measured; server CPU {base['cpu_ms_per_judgment']['server']:.2f} ms vs "
                f"{app['cpu_ms_per_judgment']['server']:.2f} ms per judgment"
            )
    load = os.getloadavg()
    lines.append(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", default=os.environ.get("PREFLOOP_BENCH_DATABASE_URL", DEFAULT_URL))
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument("--concurrency", type=int, default=64, help="simulated labelers / pgbench -c")
    p.add_argument("--processes", type=int, default=1, help="load-generator processes")
    p.add_argument("--client", choices=["raw", "httpx"], default="raw")
    p.add_argument("--no-uvloop", action="store_true")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--rate", type=float, default=None, help="pace to N judgments/s (open loop)")
    p.add_argument("--tasks", type=int, default=20_000)
    p.add_argument("--port", type=int, default=0, help="0: any free port")
    p.add_argument("--reseed", action="store_true")
    p.add_argument("--only", choices=["app", "baseline", "sql"], default=None)
    p.add_argument(
        "--flows",
        default="combined,two",
        help="app flows to run: combined (POST ...?next=1), two (GET next + POST)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = p.parse_args()
    if not a.port:  # a fixed default collides with other servers on a shared machine
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            a.port = sock.getsockname()[1]
    if shutil.which("pgbench") is None and a.only in (None, "sql"):
        sys.exit("pgbench not found: apt-get install postgresql-contrib (or --only app)")
    tokens_path = HERE / ".tokens.json"
    ntasks = ensure_seeded(a.url, tokens_path, max(64, a.concurrency), a.tasks, a.reseed)
    tokens = json.loads(tokens_path.read_text())
    with tempfile.TemporaryDirectory(prefix="prefloop-bench-") as d:
        tmp = Path(d)
        runs: dict[str, dict] = {}
        sql = None
        if a.only in (None, "app"):
            for flow in a.flows.split(","):
                reset(a.url)
                runs[f"app {flow}"] = bench_app(a, tokens, tmp, flow)
        if a.only in (None, "baseline"):
            reset(a.url)
            runs["baseline combined"] = bench_app(a, tokens, tmp, "combined", baseline=True)
        if a.only in (None, "sql"):
            reset(a.url)
            sql = bench_sql(a, ntasks, tmp)
    result = {"args": {k: str(v) for k, v in vars(a).items()}, "runs": runs, "sql": sql}
    result["loadavg"] = os.getloadavg()
    if a.json:
        a.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2), file=sys.stderr)
    print(summary(runs, sql))


if __name__ == "__main__":
    main()
