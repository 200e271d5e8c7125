"""The PPO job on a tiny policy and reward model with real TRL, through the worker."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.db import session_scope
from app.models import AuditEvent, ModelKind, ModelStatus, ModelVersion, RunKind, RunStatus
from app.models_registry import service as registry
from tests.training.conftest import run_job
from tests.training.synth import seed_polite_preferences

PPO = {
    "learning_rate": 1e-3,
    "num_ppo_steps": 8,
    "batch_size": 8,
    "num_ppo_epochs": 2,
    "response_length": 16,
    "eval_samples_per_prompt": 4,
    "heldout_fraction": 0.25,
    "max_heldout": 6,
    "seed": 0,
}


def test_ppo_run_improves_heldout_reward_and_promotes(ready_reward, active_tiny_policy):
    seed_polite_preferences(n_prompts=32, tasks_per_prompt=1)
    # enough held-out prompts for the gate's interval to exclude zero
    run = run_job(RunKind.ppo, {**PPO, "heldout_fraction": 0.4, "max_heldout": 12, "kl_max": 1000})
    assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    m = run.metrics
    assert m["heldout_reward_after"] > m["heldout_reward_before"], m
    assert m["reward_version_id"] == ready_reward
    assert m["promoted"] is True, m["promotion_reason"]
    assert run.kind == RunKind.policy and m["algorithm"] == "ppo"  # kind ppo is an alias
    assert m["gain_ci_low"] > 0 and m["gate_passed"] is True
    assert {"reward", "kl"} <= set(m["curves"]) and len(m["curves"]["reward"]) == 8
    with session_scope() as s:
        new = s.get(ModelVersion, m["policy_version_new_id"])
        old = s.get(ModelVersion, active_tiny_policy)
        assert new.status == ModelStatus.active and new.parent_id == active_tiny_policy
        assert old.status == ModelStatus.retired
        assert new.metrics["kl_to_ref"] == m["kl_to_ref"] and new.metrics["promoted"] is True
        assert new.metrics["curves"]["kl"]
        # the automatic promotion is in the audit trail, with the run as the actor
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "model.activate")).one()
        assert ev.target == new.version and ev.actor_name == f"worker:run {run.id}"
        assert ev.details["previous"] == old.version
        # rollback: the starting policy can be made active again
        registry.activate(s, active_tiny_policy)
    with session_scope() as s:
        assert s.get(ModelVersion, m["policy_version_new_id"]).status == ModelStatus.retired


@pytest.mark.slow
def test_ppo_run_not_promoted_when_kl_bound_is_tiny(ready_reward, active_tiny_policy):
    seed_polite_preferences(n_prompts=24, tasks_per_prompt=1)
    run = run_job(RunKind.ppo, {**PPO, "num_ppo_steps": 4, "kl_max": 1e-9})
    assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    m = run.metrics
    assert m["promoted"] is False and m["kl_to_ref"] > 1e-9
    assert "left ready" in m["promotion_reason"]
    with session_scope() as s:
        new = s.get(ModelVersion, m["policy_version_new_id"])
        assert new.status == ModelStatus.ready and new.metrics["promoted"] is False
        active = registry.active_version(s, ModelKind.policy)
        assert active is not None and active.id == active_tiny_policy


def test_ppo_run_needs_a_reward_model(active_tiny_policy):
    seed_polite_preferences(n_prompts=12, tasks_per_prompt=1)
    run = run_job(RunKind.ppo, PPO)
    assert run.status == RunStatus.failed and "no reward model" in run.error


@pytest.mark.slow
def test_a_ppo_row_queued_before_the_policy_kind_runs_through_the_policy_job(
    ready_reward, active_tiny_policy
):  # type: ignore[no-untyped-def]
    """Rows stored with kind `ppo` (before the alias existed) run the one policy job and gate."""
    from app.models import Run
    from workers.runner import Worker

    seed_polite_preferences(n_prompts=24, tasks_per_prompt=1)
    with session_scope() as s:  # as an older prefloop stored it: kind ppo, no algorithm
        run = Run(kind=RunKind.ppo, params={**PPO, "num_ppo_steps": 2}, status=RunStatus.queued)
        s.add(run)
        s.flush()
        rid = run.id
    assert Worker(worker_id="t", fill_queue=False).tick()
    with session_scope() as s:
        done = s.get(Run, rid)
        assert done is not None and done.status == RunStatus.succeeded, done and done.error
        assert done.metrics["algorithm"] == "ppo" and "gate_passed" in done.metrics
