"""Policy runs (ppo alias, rloo, grpo, dpo) through a real worker on tiny models with real TRL:
each trains, registers, passes or fails the gate as it should, is served after promotion and
rolls back."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.db import session_scope
from app.models import ModelKind, ModelStatus, ModelVersion, Run, RunKind, RunStatus
from app.models_registry import service as registry
from tests.factories import auth, make_user
from tests.training.conftest import run_job
from tests.training.synth import seed_polite_preferences

GATE = {"heldout_fraction": 0.4, "max_heldout": 12, "eval_samples_per_prompt": 4, "seed": 0}
GROUP = {"learning_rate": 1e-3, "steps": 12, "batch_size": 8, "num_generations": 4}
CONFIGS = {
    "ppo": {**GATE, "learning_rate": 1e-3, "steps": 8, "batch_size": 8, "response_length": 16},
    "rloo": {**GATE, **GROUP, "max_new_tokens": 16},
    "grpo": {**GATE, **GROUP, "max_new_tokens": 16},
    "dpo": {**GATE, "learning_rate": 1e-3, "batch_size": 8, "num_train_epochs": 2},
}


def _served_model(client, token: str) -> str:  # type: ignore[no-untyped-def]
    r = client.post(
        "/v1/chat/completions",
        json={
            "model": "prefloop-policy",
            "messages": [{"role": "user", "content": "Hello, how are you?"}],
            "max_tokens": 4,
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    return r.json()["model"]


def _serve(token: str) -> str:
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app()) as client:
        return _served_model(client, token)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["ppo", "rloo", "grpo", "dpo"])
def test_trains_passes_gate_is_served_and_rolls_back(
    algorithm, ready_reward, active_tiny_policy, client
):
    seed_polite_preferences(n_prompts=32, tasks_per_prompt=1)
    run = run_job(RunKind.policy, {"algorithm": algorithm, **CONFIGS[algorithm], "kl_max": 1000})
    assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    m = run.metrics
    assert m["algorithm"] == algorithm and m["gate_passed"] is True, m["gate_reason"]
    assert m["gain_ci_low"] > 0 and m["gain_ci_low"] <= m["heldout_reward_delta"]
    assert m["heldout_reward_after"] > m["heldout_reward_before"]
    assert m["reward_version_id"] == ready_reward and m["promoted"] is True
    assert len(m["gate"]["per_prompt"]) == m["gate"]["gain"]["n"] > 1
    assert m["curves"], "no training curves"
    if algorithm == "dpo":
        assert m["pref_accuracy_after"] > m["pref_accuracy_before"] and m["pref_margin_low"] > 0
        assert m["pairs_train"] > 0 and m["pairs_eval"] > 0 and "margin" in m["curves"]
        assert m["pairs_kwise"] == m["pairs_train"] + m["pairs_eval"]  # K=3 rankings
    else:
        assert "kl" in m["curves"] and "reward" in m["curves"]
    token = make_user("reader", "researcher")
    with session_scope() as s:
        new = s.get(ModelVersion, m["policy_version_new_id"])
        assert new.status == ModelStatus.active and new.parent_id == active_tiny_policy
        assert new.metrics["gate"]["gain"]["low"] == m["gain_ci_low"]
        assert new.metrics["algorithm"] == algorithm and new.metrics["promoted"] is True
        new_name = new.version
        old_name = s.get(ModelVersion, active_tiny_policy).version
        assert s.get(ModelVersion, active_tiny_policy).status == ModelStatus.retired
    assert _serve(token) == new_name
    with session_scope() as s:  # rollback: the starting policy is made active again
        registry.activate(s, active_tiny_policy)
    with session_scope() as s:
        assert s.get(ModelVersion, m["policy_version_new_id"]).status == ModelStatus.retired
    assert _serve(token) == old_name
    # the run page shows the same gate card for every algorithm
    html = client.get(f"/admin/runs/{run.id}", headers=auth(make_user("boss", "admin"))).text
    assert 'id="gate"' in html and "95% CI" in html and "KL to reference" in html


@pytest.mark.slow
def test_noise_fails_the_gate_and_nothing_is_promoted(ready_reward, active_tiny_policy):
    seed_polite_preferences(n_prompts=32, tasks_per_prompt=1)
    params = {**CONFIGS["grpo"], "algorithm": "grpo", "learning_rate": 1e-7, "steps": 2}
    run = run_job(RunKind.policy, {**params, "kl_max": 1000})
    assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    m = run.metrics
    assert m["gate_passed"] is False and m["promoted"] is False
    assert "not distinguishable from noise" in m["gate_reason"] and m["gain_ci_low"] <= 0
    assert "left ready" in m["promotion_reason"]
    with session_scope() as s:
        new = s.get(ModelVersion, m["policy_version_new_id"])
        assert new.status == ModelStatus.ready and new.metrics["gate_passed"] is False
        assert registry.active_version(s, ModelKind.policy).id == active_tiny_policy
        registry.activate(s, new.id)  # an admin may still activate it by hand
    with session_scope() as s:
        assert registry.active_version(s, ModelKind.policy).id == m["policy_version_new_id"]


@pytest.mark.slow
def test_dpo_without_reward_model_uses_preference_gate_and_kl_bound(active_tiny_policy):
    seed_polite_preferences(n_prompts=32, tasks_per_prompt=1)
    run = run_job(RunKind.policy, {"algorithm": "dpo", **CONFIGS["dpo"], "kl_max": 1e-6})
    assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    m = run.metrics
    assert m["reward_version_id"] is None and m["gate"]["gain"] is None
    assert m["pref_accuracy_after"] > 0.5
    assert m["gate_passed"] is False and "exceeds the bound" in m["gate_reason"]
    with session_scope() as s:
        assert registry.active_version(s, ModelKind.policy).id == active_tiny_policy


def test_online_algorithms_need_a_reward_model(active_tiny_policy):
    seed_polite_preferences(n_prompts=12, tasks_per_prompt=1)
    run = run_job(RunKind.policy, {"algorithm": "rloo", "batch_size": 4, "num_generations": 4})
    assert run.status == RunStatus.failed and "no reward model" in run.error


def test_api_ppo_alias_and_bad_params(client):  # type: ignore[no-untyped-def]
    h = auth(make_user("boss", "admin"))
    r = client.post("/api/v1/runs", json={"kind": "ppo", "params": {"steps": 3}}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "policy" and r.json()["params"] == {
        "num_ppo_steps": 3,
        "algorithm": "ppo",
    }
    for body, needle in [
        ({"kind": "policy", "params": {"algorithm": "grpo", "beta": 0}}, "beta"),
        ({"kind": "policy", "params": {"algorithm": "sgd"}}, "Input should be"),
        ({"kind": "policy", "params": {"algorithm": ["dpo"]}}, "Input should be"),
        ({"kind": "ppo", "params": {"algorithm": "dpo"}}, "kind policy"),
        ({"kind": "policy", "params": {"algorithm": "dpo", "learning_rate": "x"}}, "learning_rate"),
        ({"kind": "policy", "params": {"algorithm": "rloo", "batch_size": 1e9}}, "batch"),
        ({"kind": "policy", "params": {"algorithm": "dpo", "typo_lr": 1}}, "typo_lr"),
    ]:
        r = client.post("/api/v1/runs", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert needle in r.text
    with session_scope() as s:
        assert [run.kind for run in s.scalars(select(Run))] == [RunKind.policy]


@pytest.mark.slow
def test_ppo_with_lora_is_gated_on_its_merged_copy(ready_reward, active_tiny_policy):
    seed_polite_preferences(n_prompts=32, tasks_per_prompt=1)
    params = {"algorithm": "ppo", **CONFIGS["ppo"], "lora_r": 4, "kl_max": 1000}
    run = run_job(RunKind.policy, params)
    assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    m = run.metrics
    assert m["lora_r"] == 4 and m["device"] == "cpu" and m["processes"] == 1
    assert m["gate"]["gain"]["n"] > 1 and m["kl_to_ref"] is not None


@pytest.mark.slow
def test_rloo_result_can_wait_on_the_arena(ready_reward, active_tiny_policy):
    from app.models import ArenaCampaign

    seed_polite_preferences(n_prompts=32, tasks_per_prompt=1)
    params = {"algorithm": "rloo", **CONFIGS["rloo"], "steps": 2, "promote_by": "arena"}
    run = run_job(RunKind.policy, params)
    assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    m = run.metrics
    assert m["promoted"] is False and "waiting on the arena" in m["promotion_reason"]
    with session_scope() as s:
        c = s.scalar(
            select(ArenaCampaign).where(ArenaCampaign.candidate_id == m["policy_version_new_id"])
        )
        assert c is not None and c.purpose == "gate" and c.run_id == run.id
        assert registry.active_version(s, ModelKind.policy).id == active_tiny_policy
