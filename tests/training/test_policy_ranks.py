"""rloo/grpo/dpo runs as a 2-process group over gloo on CPU (torchrun, workers/launch.py):
they finish and register a version written by rank 0; cancel stops every rank; a dying rank
fails the run and the active policy stays."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from app.db import session_scope
from app.models import ModelKind, ModelStatus, ModelVersion, Run, RunKind, RunStatus
from app.models_registry import service as registry
from app.runs import service as runs
from tests.training.conftest import run_job
from tests.training.ranks import rank_pids, start_ranked_run
from tests.training.synth import seed_polite_preferences

CHEAP = {"max_heldout": 4, "eval_samples_per_prompt": 1, "auto_promote": False, "seed": 0}
TWO = {
    "grpo": {
        **CHEAP, "learning_rate": 1e-3, "steps": 2, "batch_size": 2, "num_generations": 2,
        "max_new_tokens": 8,
    },
    "dpo": {**CHEAP, "learning_rate": 1e-3, "batch_size": 4, "max_length": 128},
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("algorithm", "lora_r"), [("grpo", 0), ("grpo", 4), ("dpo", 4)])
def test_two_rank_policy_run_registers_a_version(
    algorithm, lora_r, ready_reward, active_tiny_policy
):  # type: ignore[no-untyped-def]
    seed_polite_preferences(n_prompts=16, tasks_per_prompt=1)
    params = {"algorithm": algorithm, **TWO[algorithm], "num_processes": 2, "lora_r": lora_r}
    run = run_job(RunKind.policy, params)
    assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    m = run.metrics
    assert (m["processes"], m["device"], m["lora_r"]) == (2, "cpu", lora_r)
    assert "2 process(es) started" in run.log_tail and m["curves"]["loss"]
    assert m["steps"] >= 1 and m["gate"]["kl_per_prompt"]
    with session_scope() as s:
        mv = s.get(ModelVersion, m["policy_version_new_id"])
        assert mv.status == ModelStatus.ready
        path = Path(mv.path)  # written by rank 0 only
    stored = path / ("adapter/adapter_config.json" if lora_r else "config.json")
    assert stored.exists()
    assert not rank_pids()


LONG = {"algorithm": "dpo", "batch_size": 2, "num_train_epochs": 100, "num_processes": 2}


def _versions(rid: int) -> list[ModelStatus]:
    with session_scope() as s:
        return [v.status for v in s.query(ModelVersion).filter(ModelVersion.run_id == rid)]


@pytest.mark.slow
def test_cancel_stops_every_rank_and_a_dying_rank_fails_the_run(active_tiny_policy):
    seed_polite_preferences(n_prompts=8, tasks_per_prompt=2, k=3)
    rid, thread = start_ranked_run(RunKind.policy, LONG)
    asked = time.monotonic()
    with session_scope() as s:
        runs.request_cancel(s, rid)
    thread.join(60)
    assert not thread.is_alive() and time.monotonic() - asked < 15
    assert not rank_pids()
    with session_scope() as s:
        assert s.get(Run, rid).status == RunStatus.cancelled
    assert _versions(rid) == [ModelStatus.failed]

    rid, thread = start_ranked_run(RunKind.policy, LONG)
    os.kill(max(rank_pids()), signal.SIGKILL)
    thread.join(60)
    assert not thread.is_alive() and not rank_pids()
    with session_scope() as s:
        run = s.get(Run, rid)
        assert run.status == RunStatus.failed and "process group failed" in run.error
        assert registry.active_version(s, ModelKind.policy).id == active_tiny_policy
    assert _versions(rid) == [ModelStatus.failed]
