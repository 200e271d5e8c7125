"""GET /metrics: who may scrape it, what it reports (parsed with prometheus-client's parser),
and that `serve --workers 2` reports the requests of both processes."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from app.db import session_scope
from app.metrics.multiproc import MULTIPROC_ENV, prepare_multiproc_dir
from app.models import ModelVersion, Run, RunKind, RunStatus, WorkerHeartbeat, utcnow
from app.serving.limits import GenerationLimiter
from tests.conftest import LiveServer
from tests.factories import auth, make_tasks, make_user
from tests.serving.support import settings_env
from tests.workers.support import store_tiny

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample as {(name, sorted labels): value}; raises on anything unparseable."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(client, token: str) -> Samples:  # type: ignore[no-untyped-def]
    r = client.get("/metrics", headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


def test_only_the_metrics_token_or_an_admin_may_scrape(client) -> None:  # type: ignore[no-untyped-def]
    admin, labeler = make_user("root", "admin"), make_user("lab")
    researcher = make_user("res", "researcher")
    with settings_env(metrics_token="scrape-secret-123"):
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=auth(labeler)).status_code == 403
        assert client.get("/metrics", headers=auth(researcher)).status_code == 403
        assert client.get("/metrics", headers=auth("scrape-secret-12")).status_code == 401
        assert client.get("/metrics", headers=auth("scrape-secret-123")).status_code == 200
        assert client.get("/metrics", headers=auth(admin)).status_code == 200
    # without a token configured, a guessed empty bearer is no way in
    r = client.get("/metrics", headers={"Authorization": "Bearer "})
    assert r.status_code == 401 and r.json()["detail"]


def test_requests_are_counted_by_route_template_and_labeling_state_is_reported(client) -> None:  # type: ignore[no-untyped-def]
    admin, alice, bob = make_user("root", "admin"), make_user("alice"), make_user("bob")
    make_tasks(3, k=2)
    before = scrape(client, admin)
    route = "/api/v1/tasks/{task_id}/judgments"
    key = (
        "prefloop_http_requests_total",
        (("method", "POST"), ("route", route), ("status", "201")),
    )
    task = client.get("/api/v1/tasks/next", headers=auth(alice)).json()
    body = {"ranking": [[c["id"]] for c in task["candidates"]]}
    url = f"/api/v1/tasks/{task['task_id']}/judgments"
    assert client.post(url, json=body, headers=auth(alice)).status_code == 201
    assert client.get("/api/v1/tasks/next", headers=auth(bob)).status_code == 200
    assert client.get("/no/such/page/12345").status_code == 404

    after = scrape(client, admin)
    assert after[key] - before.get(key, 0) == 1
    lat = ("prefloop_http_request_duration_seconds_count", (("method", "POST"), ("route", route)))
    assert after[lat] - before.get(lat, 0) == 1
    routes = {dict(labels).get("route") for (name, labels) in after}
    assert url not in routes and "/no/such/page/12345" not in routes  # templates only
    assert "<unmatched>" in routes
    assert after[("prefloop_judgments_total", (("kind", "labeler"),))] == 1
    assert after[("prefloop_judgments_total", (("kind", "imported"),))] == 0
    assert after[("prefloop_tasks", (("state", "complete"),))] == 1
    assert after[("prefloop_tasks", (("state", "leased"),))] == 1
    assert after[("prefloop_tasks", (("state", "open"),))] == 1
    assert after[("prefloop_active_labelers", ())] == 2


def test_runs_models_and_worker_heartbeats(client, tiny_policy_dir: Path) -> None:  # type: ignore[no-untyped-def]
    admin = make_user("root", "admin")
    _, version = store_tiny(tiny_policy_dir)
    now = utcnow()
    with session_scope() as s:
        s.add(Run(kind=RunKind.reward, status=RunStatus.queued))
        for minutes in (2, 20):
            s.add(
                Run(
                    kind=RunKind.reward,
                    status=RunStatus.succeeded,
                    started_at=now - timedelta(minutes=minutes),
                    finished_at=now,
                )
            )
        s.add(WorkerHeartbeat(worker_id="host:42", heartbeat_at=now - timedelta(seconds=30)))
        s.add(WorkerHeartbeat(worker_id="old:1", heartbeat_at=now - timedelta(days=3)))
    m = scrape(client, admin)
    assert m[("prefloop_runs", (("kind", "reward"), ("status", "queued")))] == 1
    assert m[("prefloop_runs", (("kind", "reward"), ("status", "succeeded")))] == 2
    assert m[("prefloop_runs", (("kind", "ppo"), ("status", "failed")))] == 0
    hist = "prefloop_run_duration_seconds"
    assert m[(f"{hist}_count", (("kind", "reward"),))] == 2
    assert m[(f"{hist}_bucket", (("kind", "reward"), ("le", "300.0")))] == 1
    assert m[(f"{hist}_bucket", (("kind", "reward"), ("le", "1800.0")))] == 2
    assert abs(m[(f"{hist}_sum", (("kind", "reward"),))] - 22 * 60) < 1
    info = (("base_model", "tiny"), ("kind", "policy"), ("version", version))
    assert m[("prefloop_active_model_info", info)] == 1
    age = m[("prefloop_worker_heartbeat_age_seconds", (("worker", "host:42"),))]
    assert 29 <= age < 120
    assert not any(dict(labels).get("worker") == "old:1" for _, labels in m)


def test_generation_tokens_and_queue_depth(client, tiny_policy_dir: Path) -> None:  # type: ignore[no-untyped-def]
    admin, user = make_user("root", "admin"), make_user("res", "researcher")
    store_tiny(tiny_policy_dir)
    tokens = "prefloop_generation_tokens_total"
    before = REGISTRY.get_sample_value(tokens) or 0
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6, "temperature": 0}
    r = client.post("/v1/chat/completions", json=body, headers=auth(user))
    assert r.status_code == 200, r.text
    used = r.json()["usage"]["completion_tokens"]
    assert used > 0
    m = scrape(client, admin)
    assert m[(tokens, ())] - before == used
    assert m[("prefloop_generation_seconds_total", ())] > 0

    async def scenario() -> None:
        limiter = GenerationLimiter(slots=1, per_user=2, queue=2, queue_timeout=30)
        release = threading.Event()
        first = asyncio.ensure_future(limiter.admit(1).run(release.wait))
        while limiter.running() < 1:
            await asyncio.sleep(0)
        second = asyncio.ensure_future(limiter.admit(2).run(lambda: None))
        while limiter.queued() < 1:
            await asyncio.sleep(0)
        assert REGISTRY.get_sample_value("prefloop_generation_queue_depth") == 1
        assert REGISTRY.get_sample_value("prefloop_generation_running") == 1
        release.set()
        await asyncio.gather(first, second)
        while limiter.running():
            await asyncio.sleep(0.01)
        assert REGISTRY.get_sample_value("prefloop_generation_queue_depth") == 0
        assert REGISTRY.get_sample_value("prefloop_generation_running") == 0
        limiter.shutdown()

    asyncio.run(scenario())


def test_prepare_multiproc_dir_starts_empty(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "mp"
    target.mkdir()
    (target / "counter_123.db").write_bytes(b"stale")
    (target / "gauge_livesum_9.db").write_bytes(b"stale")
    (target / "notes.txt").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_ENV, str(target))
    assert prepare_multiproc_dir(tmp_path) == target
    assert [p.name for p in target.iterdir()] == ["notes.txt"]  # only metric files go
    monkeypatch.delenv(MULTIPROC_ENV)
    made = prepare_multiproc_dir(tmp_path / "data")
    assert made == tmp_path / "data" / "prometheus-multiproc" and made.is_dir()


HEALTHZ = (
    "prefloop_http_requests_total",
    (("method", "GET"), ("route", "/healthz"), ("status", "200")),
)


def _healthz_per_process(mp: Path, tmp: Path) -> dict[str, float]:
    """Each process's own /healthz count, read from its metric file alone."""
    out = {}
    for f in mp.glob("counter_*.db"):
        alone = tmp / f.stem
        alone.mkdir(exist_ok=True)
        shutil.copy(f, alone / f.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        out[f.stem] = parse(generate_latest(registry).decode()).get(HEALTHZ, 0)
    return out


def test_two_worker_processes_are_merged(tmp_path: Path) -> None:
    """`serve --workers 2`: every scrape, whichever process answers, counts both processes."""
    token = "multi-process-scrape-token"
    mp = tmp_path / "mp"
    mp.mkdir()
    server = LiveServer(workers=2, env={MULTIPROC_ENV: str(mp), "PREFLOOP_METRICS_TOKEN": token})
    server.start()
    try:
        # start() polled /healthz itself until the server answered
        n = sum(_healthz_per_process(mp, tmp_path).values())
        close = {"Connection": "close"}  # a new connection each: the kernel spreads them
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for _ in range(20):
                assert httpx.get(server.url + "/healthz", headers=close).status_code == 200
            n += 20
            per_process = _healthz_per_process(mp, tmp_path)
            if sum(1 for v in per_process.values() if v > 0) == 2:
                break
        assert sum(1 for v in per_process.values() if v > 0) == 2, per_process
        assert sum(per_process.values()) == n
        for _ in range(4):
            r = httpx.get(server.url + "/metrics", headers={**auth(token), **close})
            assert r.status_code == 200, r.text
            assert parse(r.text)[HEALTHZ] == n
    finally:
        server.stop()


def test_the_grafana_dashboard_uses_only_metrics_we_export(client) -> None:  # type: ignore[no-untyped-def]
    import json
    import re

    admin = make_user("root", "admin")
    with session_scope() as s:  # an info family without samples is not printed at all
        s.add(ModelVersion(version="p1", kind="policy", status="active", path="/m/p1"))
    text = client.get("/metrics", headers=auth(admin)).text
    families = {f.name for f in text_string_to_metric_families(text)}  # also without samples
    dashboard = json.loads((Path(__file__).parents[2] / "docs/grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\bprefloop_[a-z_]+", e)}
    assert len(dashboard["panels"]) >= 10 and used
    missing = {
        m
        for m in used
        if m not in families and re.sub(r"_(total|bucket|sum|count)$", "", m) not in families
    }
    assert not missing, missing
