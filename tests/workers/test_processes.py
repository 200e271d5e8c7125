"""Real worker processes: cancellation within seconds, kill -9 recovery, no double execution."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db import session_scope
from app.models import ComparisonTask, ModelKind, ModelStatus, RunStatus, utcnow
from app.models_registry import service as registry
from app.runs import service as runs
from tests.factories import auth, make_user
from tests.workers.support import add_prompts, get_run, start_worker, stop, store_tiny, wait_for

FAST = {"PREFLOOP_HEARTBEAT_SECONDS": "0.5"}
LONG = {"prompts": 400, "batch_prompts": 1, "max_new_tokens": 24, "temperature": 1.0}
# bound for work that takes seconds on an idle machine and minutes on a crowded one: every
# wait ends on its condition (or when its worker dies), so only a broken run uses it all
SLOW = 900


def _running(run_id: int, steps: int = 1) -> bool:
    run = get_run(run_id)
    assert run.status in (RunStatus.queued, RunStatus.running), (run.status, run.error)
    return run.status == RunStatus.running and run.progress_step >= steps


def _alive(
    proc: subprocess.Popen[bytes], log: Path, cond: Callable[[], bool]
) -> Callable[[], bool]:
    """`cond`, failing at once (with the worker's log) if the worker process has exited."""

    def check() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"worker exited ({proc.returncode}): {log.read_text()[-3000:]}")
        return cond()

    return check


def _stale(run_id: int, seconds: float) -> bool:
    """The run's last heartbeat is older than `seconds` (the clock reclaim_stale reads)."""
    beat = get_run(run_id).heartbeat_at
    return beat is not None and utcnow() - beat > timedelta(seconds=seconds)


@pytest.mark.timeout(2 * SLOW)
def test_cancel_via_api_stops_a_running_job(client, tiny_policy_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store_tiny(tiny_policy_dir)
    add_prompts(400)
    admin = make_user("boss", "admin")
    rid = client.post(
        "/api/v1/runs", json={"kind": "generate", "params": LONG}, headers=auth(admin)
    ).json()["id"]
    proc, log = start_worker(tmp_path, "w1", "--no-fill", env=FAST)
    try:
        wait_for(_alive(proc, log, lambda: _running(rid)), SLOW, "the run to make progress")
        r = client.post(f"/api/v1/runs/{rid}/cancel", headers=auth(admin))
        assert r.status_code == 200 and r.json()["cancel_requested"]
        wait_for(lambda: get_run(rid).status == RunStatus.cancelled, 10, "cancellation")
        run = get_run(rid)
        assert run.progress_step < 400 and run.finished_at is not None
        assert proc.poll() is None  # the worker survives and keeps polling
    finally:
        stop(proc)
    assert f"run {rid} cancelled" in log.read_text()


@pytest.mark.timeout(3 * SLOW)
def test_killed_worker_run_is_retried_and_active_model_untouched(tiny_policy_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    active_id, _ = store_tiny(tiny_policy_dir)
    add_prompts(120)
    with session_scope() as s:
        # long enough that it cannot finish before the kill, short enough for the rescuer
        params = {**LONG, "prompts": 120, "max_new_tokens": 12}
        rid = runs.create_run(s, "generate", params, None).id
    proc, log = start_worker(tmp_path, "doomed", "--no-fill", env=FAST)
    try:
        wait_for(_alive(proc, log, lambda: _running(rid, 2)), SLOW, "the run to make progress")
        with session_scope() as s:  # a version this run was writing when it died
            _, path = registry.new_version_path("policy")
            half = registry.register_version(s, "policy", path, status="training", run_id=rid).id
    finally:
        stop(proc, signal.SIGKILL)
    assert get_run(rid).status == RunStatus.running  # nobody told the database
    # the rescuer reclaims runs silent for over 2 s: start it once this one is (a condition on
    # the recorded heartbeat, the clock the rescuer reads, not a sleep)
    wait_for(lambda: _stale(rid, 2.5), SLOW, "the heartbeat to go stale")
    env = {**FAST, "PREFLOOP_STALE_AFTER_SECONDS": "2", "PREFLOOP_MAX_ATTEMPTS": "2"}
    proc2, log2 = start_worker(tmp_path, "rescuer", "--no-fill", "--once", env=env)
    assert proc2.wait(SLOW) == 0, log2.read_text()[-3000:]
    run = get_run(rid)
    assert run.status == RunStatus.succeeded, run.error
    assert run.attempts == 2 and run.worker_id == "rescuer"
    assert "worker doomed stopped heartbeating" in run.log_tail
    with session_scope() as s:
        assert registry.get_version(s, half).status == ModelStatus.failed
        active = registry.active_version(s, ModelKind.policy)
        assert active is not None and active.id == active_id


def test_two_workers_never_run_the_same_run(tiny_policy_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store_tiny(tiny_policy_dir)
    ids = add_prompts(16)
    with session_scope() as s:
        rids = [
            runs.create_run(
                s,
                "generate",
                {"prompt_ids": ids[i : i + 2], "max_new_tokens": 16, "temperature": 1.0},
                None,
            ).id
            for i in range(0, 16, 2)
        ]
    procs = [start_worker(tmp_path, f"w{i}", "--no-fill", "--once") for i in (1, 2)]
    for proc, log in procs:
        assert proc.wait(300) == 0, log.read_text()[-3000:]
    workers = set()
    for rid in rids:
        run = get_run(rid)
        assert run.status == RunStatus.succeeded, run.error
        assert run.attempts == 1 and run.log_tail.count("claimed by") == 1
        workers.add(run.worker_id)
        with session_scope() as s:
            made = s.scalar(select(func.count()).where(ComparisonTask.run_id == rid))
        assert made == run.metrics["tasks_created"] <= 2
    assert workers <= {"w1", "w2"}
    for _, log in procs:  # each run was started by exactly one process
        text = log.read_text()
        for rid in rids:
            assert text.count(f"run {rid} (generate) started") <= 1
    started = sum(log.read_text().count("(generate) started") for _, log in procs)
    assert started == len(rids)


@pytest.mark.timeout(2 * SLOW)
def test_sigterm_requeues_the_current_run(tiny_policy_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store_tiny(tiny_policy_dir)
    add_prompts(40)
    with session_scope() as s:
        rid = runs.create_run(s, "generate", {**LONG, "prompts": 40}, None).id
    proc, log = start_worker(tmp_path, "polite", "--no-fill", env=FAST)
    try:
        wait_for(_alive(proc, log, lambda: _running(rid)), SLOW, "the run to make progress")
        assert stop(proc, signal.SIGTERM, timeout=60) == 0, log.read_text()[-3000:]
    finally:
        stop(proc, signal.SIGKILL)
    run = get_run(rid)
    assert run.status == RunStatus.queued and run.worker_id is None
    assert run.attempts == 0 and "worker shut down; re-queued" in run.log_tail
