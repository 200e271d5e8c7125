"""Real worker processes for every policy algorithm: cancel stops a running run within seconds
and fails its version; after kill -9 the run is reclaimed and the active policy is untouched."""

from __future__ import annotations

import signal
import time

import pytest
from sqlalchemy import select

from app.db import session_scope
from app.models import ModelKind, ModelStatus, ModelVersion
from app.models import RunStatus as St
from app.models_registry import service as registry
from app.runs import service as runs
from tests.training.synth import seed_polite_preferences
from tests.workers.support import get_run, start_worker, stop, store_tiny, wait_for

ENV = {"PREFLOOP_HEARTBEAT_SECONDS": "0.5", "PREFLOOP_TORCH_THREADS": "1"}
LONG = {
    "ppo": {"steps": 10_000, "batch_size": 4, "response_length": 8, "num_ppo_epochs": 1},
    "rloo": {"steps": 10_000, "batch_size": 4, "num_generations": 2, "max_new_tokens": 8},
    "grpo": {"steps": 10_000, "batch_size": 4, "num_generations": 2, "max_new_tokens": 8},
    "dpo": {"num_train_epochs": 100, "batch_size": 2},
}


def _progressing(rid: int) -> bool:
    run = get_run(rid)
    assert run.status in (St.queued, St.running), (run.status, run.error, run.log_tail)
    return run.status == St.running and run.progress_step >= 1


def _versions(rid: int) -> list[ModelStatus]:
    with session_scope() as s:
        return list(s.scalars(select(ModelVersion.status).where(ModelVersion.run_id == rid)))


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["ppo", "rloo", "grpo", "dpo"])
def test_cancel_and_kill9(algorithm, tiny_policy_dir, tiny_reward_dir, tmp_path):  # type: ignore[no-untyped-def]
    active, _ = store_tiny(tiny_policy_dir)
    with session_scope() as s:
        registry.register_version(s, ModelKind.reward, tiny_reward_dir, parent_id=active)
    seed_polite_preferences(n_prompts=16, tasks_per_prompt=1)
    params = {"algorithm": algorithm, **LONG[algorithm]}
    with session_scope() as s:
        first = runs.create_run(s, "policy", params, None).id
    proc, log = start_worker(tmp_path, "w1", "--no-fill", env=ENV)
    try:
        wait_for(lambda: _progressing(first), 180, "the run to make progress")
        with session_scope() as s:
            runs.request_cancel(s, first)
        asked = time.monotonic()
        wait_for(lambda: get_run(first).status == St.cancelled, 30, "cancellation")
        assert time.monotonic() - asked < 30
        assert _versions(first) == [ModelStatus.failed]
        with session_scope() as s:
            second = runs.create_run(s, "policy", params, None).id
        wait_for(lambda: _progressing(second), 180, "the second run to make progress")
        assert _versions(second) == [ModelStatus.training]
    finally:
        stop(proc, signal.SIGKILL)
    assert get_run(second).status == St.running  # nobody told the database
    time.sleep(2.5)
    env = {**ENV, "PREFLOOP_STALE_AFTER_SECONDS": "2", "PREFLOOP_MAX_ATTEMPTS": "1"}
    rescuer, log2 = start_worker(tmp_path, "rescuer", "--no-fill", "--once", env=env)
    assert rescuer.wait(120) == 0, log2.read_text()[-3000:]
    run = get_run(second)
    assert run.status == St.failed and "worker w1 stopped heartbeating" in run.error
    assert _versions(second) == [ModelStatus.failed]
    with session_scope() as s:
        assert registry.active_version(s, ModelKind.policy).id == active
    assert f"run {first} cancelled" in log.read_text()
