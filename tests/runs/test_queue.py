"""Run queue: API and CLI, claiming, ownership, stale-heartbeat reclaim."""

from __future__ import annotations

from datetime import timedelta

from typer.testing import CliRunner

from app.cli import GROUPS, _discover, root
from app.db import session_scope
from app.models import ModelStatus, RunStatus, utcnow
from app.models_registry import service as registry
from app.runs import service as runs
from tests.factories import auth, make_user
from tests.workers.support import get_run

if "runs" not in GROUPS:
    _discover()
runner = CliRunner()


def test_api_create_list_show_cancel(client) -> None:  # type: ignore[no-untyped-def]
    admin, labeler = make_user("boss", "admin"), make_user("lab")
    r = client.post(
        "/api/v1/runs", json={"kind": "generate", "params": {"prompts": 3}}, headers=auth(admin)
    )
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "queued" and run["params"] == {"prompts": 3}
    assert run["created_by_id"] is not None
    listed = client.get("/api/v1/runs?status=queued", headers=auth(admin)).json()["runs"]
    assert [x["id"] for x in listed] == [run["id"]]
    assert client.get(f"/api/v1/runs/{run['id']}", headers=auth(admin)).json()["kind"] == "generate"
    r = client.post(f"/api/v1/runs/{run['id']}/cancel", headers=auth(admin))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = client.post(f"/api/v1/runs/{run['id']}/cancel", headers=auth(admin))
    assert r.status_code == 409 and "already cancelled" in r.json()["detail"]
    assert client.get("/api/v1/runs/999", headers=auth(admin)).status_code == 404
    bad = client.post("/api/v1/runs", json={"kind": "train"}, headers=auth(admin))
    assert bad.status_code == 422
    assert client.get("/api/v1/runs", headers=auth(labeler)).status_code == 403
    assert client.post("/api/v1/runs", json={"kind": "ppo"}).status_code == 401


def test_claim_is_fifo_and_ownership_is_checked() -> None:
    with session_scope() as s:
        a = runs.create_run(s, "generate", {}, None).id
        b = runs.create_run(s, "reward", {}, None).id
    with session_scope() as s:
        assert runs.claim_next(s, "w1").id == a  # type: ignore[union-attr]
    with session_scope() as s:
        assert runs.claim_next(s, "w2", ["ppo"]) is None
        assert runs.claim_next(s, "w2").id == b  # type: ignore[union-attr]
        assert runs.claim_next(s, "w3") is None
    with session_scope() as s:
        assert not runs.finish(s, a, "w2", RunStatus.succeeded)  # not w2's run
        assert runs.record_progress(s, a, "w1", 1, 4, {"loss": 0.5}, "half way\n")
        assert runs.finish(s, a, "w1", RunStatus.succeeded, {"done": True})
    run = get_run(a)
    assert run.status == RunStatus.succeeded and run.attempts == 1 and run.worker_id == "w1"
    assert run.metrics == {"loss": 0.5, "done": True} and "half way" in run.log_tail
    assert "claimed by w1" in run.log_tail and run.progress_step == 1


def test_cancel_running_sets_flag_and_heartbeat_reports_it() -> None:
    with session_scope() as s:
        rid = runs.create_run(s, "generate", {}, None).id
        runs.claim_next(s, "w1")
    with session_scope() as s:
        assert runs.heartbeat(s, rid, "w1") == (True, False)
        assert runs.request_cancel(s, rid).status == RunStatus.running
    with session_scope() as s:
        assert runs.heartbeat(s, rid, "w1") == (True, True)
        assert runs.heartbeat(s, rid, "other") == (False, True)


def _stale(run_id: int, seconds: float) -> None:
    with session_scope() as s:
        runs.get_run(s, run_id).heartbeat_at = utcnow() - timedelta(seconds=seconds)


def test_stale_runs_are_requeued_then_failed_and_their_versions_fail() -> None:
    with session_scope() as s:
        rid = runs.create_run(s, "reward", {}, None).id
        runs.claim_next(s, "dead-worker")
        _, path = registry.new_version_path("reward")
        mv_id = registry.register_version(s, "reward", path, status="training", run_id=rid).id
    _stale(rid, 10)
    with session_scope() as s:
        assert runs.reclaim_stale(s, 60, 2) == []  # not stale yet
    _stale(rid, 120)
    with session_scope() as s:
        assert runs.reclaim_stale(s, 60, 2) == [(rid, "queued")]
    run = get_run(rid)
    assert run.worker_id is None and "stopped heartbeating" in run.log_tail
    with session_scope() as s:
        assert registry.get_version(s, mv_id).status == ModelStatus.failed
        assert runs.claim_next(s, "w2").attempts == 2  # type: ignore[union-attr]
        assert not runs.finish(s, rid, "dead-worker", RunStatus.succeeded)
    _stale(rid, 120)
    with session_scope() as s:
        assert runs.reclaim_stale(s, 60, 2) == [(rid, "failed")]
    run = get_run(rid)
    assert run.status == RunStatus.failed and "stopped heartbeating" in (run.error or "")


def test_cli_start_list_show_cancel() -> None:
    out = runner.invoke(
        root, ["runs", "start", "generate", "-p", "prompts=5", "-p", 'versions=["a","b"]']
    )
    assert out.exit_code == 0, out.output
    rid = int(out.output.split()[-1])
    assert get_run(rid).params == {"prompts": 5, "versions": ["a", "b"]}
    out = runner.invoke(root, ["runs", "list"])
    assert out.exit_code == 0 and "generate" in out.output
    out = runner.invoke(root, ["runs", "show", str(rid)])
    assert out.exit_code == 0 and "queued" in out.output and '"prompts": 5' in out.output
    out = runner.invoke(root, ["runs", "cancel", str(rid)])
    assert out.exit_code == 0 and "cancelled" in out.output
    out = runner.invoke(root, ["runs", "cancel", str(rid)])
    assert out.exit_code == 1 and "already cancelled" in out.output
    assert runner.invoke(root, ["runs", "start", "generate", "-p", "oops"]).exit_code != 0
    assert runner.invoke(root, ["runs", "show", "4242"]).exit_code == 1


def test_cli_run_ids_beyond_int4_are_not_found() -> None:
    """A huge id is an ordinary "no such run", not a driver overflow traceback."""
    for cmd in ("show", "cancel"):
        out = runner.invoke(root, ["runs", cmd, "99999999999999999999"])
        assert out.exit_code == 1, out.output
        assert "no run 99999999999999999999" in out.output
        assert out.exception is None or isinstance(out.exception, SystemExit)
