"""The scheduler follows PREFLOOP_POLICY_ALGORITHM: online algorithms after each new reward
model, DPO after every PREFLOOP_DPO_EVERY_N new judgments."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.models import RunKind, RunStatus
from tests.training.test_scheduler import (
    _finish,
    _judgments,
    _policy,
    _reward,
    _run,
    _settings,
    _tick,
)


@pytest.mark.parametrize("algorithm", ["ppo", "rloo", "grpo"])
def test_online_algorithm_after_each_new_reward_model(algorithm):
    _policy()
    settings = _settings(policy_algorithm=algorithm, ppo_after_reward=True)
    rv = _reward("reward-a")
    (rid,) = _tick(settings)
    run = _run(rid)
    assert run.kind == RunKind.policy
    assert run.params["algorithm"] == algorithm and run.params["reward_version_id"] == rv
    assert _tick(settings) == []
    _finish(rid)
    assert _tick(settings) == []  # that reward model was used, whatever the algorithm
    _reward("reward-b")
    assert len(_tick(settings)) == 1


def test_policy_after_reward_overrides_its_ppo_alias():
    _policy()
    _reward("reward-a")
    assert _tick(_settings(ppo_after_reward=True, policy_after_reward=False)) == []
    assert len(_tick(_settings(ppo_after_reward=False, policy_after_reward=True))) == 1


def test_policy_settings_read_their_aliases(monkeypatch):
    monkeypatch.setenv("PREFLOOP_PPO_KL_MAX", "3.5")
    monkeypatch.setenv("PREFLOOP_PPO_AFTER_REWARD", "false")
    s = Settings()
    assert s.policy_kl_bound == 3.5 and s.policy_after_reward_on is False
    monkeypatch.setenv("PREFLOOP_POLICY_KL_MAX", "2")
    monkeypatch.setenv("PREFLOOP_POLICY_AFTER_REWARD", "true")
    monkeypatch.setenv("PREFLOOP_POLICY_ALGORITHM", "grpo")
    s = Settings()
    assert s.policy_kl_bound == 2.0 and s.policy_after_reward_on is True
    assert s.policy_algorithm == "grpo"
    monkeypatch.setenv("PREFLOOP_POLICY_ALGORITHM", "sgd")
    with pytest.raises(ValueError):
        Settings()


def test_dpo_every_n_new_judgments():
    _policy()
    settings = _settings(policy_algorithm="dpo", dpo_every_n=3, ppo_after_reward=True)
    _reward("reward-a")  # a new reward model does not start DPO
    _judgments(2, "a")
    assert _tick(settings) == []
    _judgments(1, "b")
    (rid,) = _tick(settings)
    run = _run(rid)
    assert run.kind == RunKind.policy and run.params["algorithm"] == "dpo"
    assert run.params["new_judgments"] == 3 and run.params["max_judgment_id"] > 0
    assert _tick(settings) == []  # one at a time
    _finish(rid, RunStatus.failed)
    assert _tick(settings) == []  # those judgments were covered
    _judgments(2, "c")
    assert _tick(settings) == []
    _judgments(1, "d")
    (rid2,) = _tick(settings)
    assert _run(rid2).params["max_judgment_id"] > run.params["max_judgment_id"]
    assert _tick(_settings(policy_algorithm="dpo", dpo_every_n=0)) == []


@pytest.mark.parametrize("weighting", ["none", "agreement", "gold"])
def test_train_weighting_setting_reaches_scheduled_reward_and_dpo_runs(weighting):
    """PREFLOOP_TRAIN_WEIGHTING: scheduled runs weight by labeler trust like a person's would."""
    _policy()
    settings = _settings(
        policy_algorithm="dpo", dpo_every_n=2, rm_every_n=2, train_weighting=weighting
    )
    _judgments(2, "a")
    reward_id, dpo_id = _tick(settings)
    for rid in (reward_id, dpo_id):
        params = _run(rid).params
        assert params.get("weighting", "none") == weighting
        assert ("weighting" in params) == (weighting != "none")  # stored only when it weighs
    assert _run(dpo_id).params["algorithm"] == "dpo"


def test_train_weighting_setting_is_validated(monkeypatch):
    monkeypatch.setenv("PREFLOOP_TRAIN_WEIGHTING", "loudest")
    with pytest.raises(ValueError):
        Settings()


def _asked_reward(name: str, weighting: str | None = None, covered: int = 7) -> tuple[int, int]:
    """A reward version whose run "exclude and retrain" queued (then_policy); (run, version)."""
    from app.db import session_scope
    from app.models import ModelKind, ModelStatus, ModelVersion, Run

    params = {"then_policy": True, "exclusion_id": 1, "trigger": "labeler 9 excluded (exclusion 1)"}
    if weighting is not None:
        params["weighting"] = weighting
    with session_scope() as s:
        run = Run(kind=RunKind.reward, status=RunStatus.succeeded, params=params)
        s.add(run)
        s.flush()
        mv = ModelVersion(version=name, kind=ModelKind.reward, status=ModelStatus.ready,
                          path="/r", run_id=run.id,
                          metrics={"judgment_id_ranges": [[1, 3], [5, covered]]})  # fmt: skip
        s.add(mv)
        s.flush()
        return run.id, mv.id


@pytest.mark.parametrize("weighting", [None, "none", "agreement"])
def test_dpo_follows_an_exclusions_reward_run_once(weighting):
    _policy()
    settings = _settings(policy_algorithm="dpo", dpo_every_n=0, ppo_after_reward=False)
    _reward("reward-a")
    assert _tick(settings) == []  # an ordinary reward model does not start DPO
    _, rv = _asked_reward("reward-clean", weighting)
    (rid,) = _tick(settings)
    run = _run(rid)
    assert run.kind == RunKind.policy and run.params["algorithm"] == "dpo"
    assert run.params["reward_version_id"] == rv  # the gate uses the clean reward model
    assert run.params["max_judgment_id"] == 7  # the same judgments as that reward model
    assert "excluded" in run.params["trigger"]
    if weighting == "agreement":
        assert run.params["weighting"] == "agreement"
    else:
        assert "weighting" not in run.params
    _finish(rid, RunStatus.failed)
    assert _tick(settings) == []  # once, even when it failed
    _reward("reward-b")
    assert _tick(settings) == []


def test_exclusion_ask_survives_a_reward_run_queued_in_between():
    """A reward run the scheduler queues as the exclusion's finishes blocks the policy run for
    a while; the ask is kept, and the newer (equally clean) reward model serves it."""
    _policy()
    settings = _settings(policy_algorithm="dpo", rm_every_n=1)
    _asked_reward("reward-clean")
    _judgments(3)
    (auto,) = _tick(settings)  # the reward trigger comes first; no policy run beside it
    assert _run(auto).kind == RunKind.reward
    _finish(auto)
    newer = _reward("reward-auto")
    (rid,) = _tick(settings)
    assert _run(rid).params["algorithm"] == "dpo"
    assert _run(rid).params["reward_version_id"] == newer
    assert _tick(settings) == []


@pytest.mark.parametrize("algorithm", ["ppo", "grpo"])
def test_online_algorithm_follows_an_exclusion_with_its_trigger_off(algorithm):
    _policy()
    settings = _settings(policy_algorithm=algorithm, ppo_after_reward=False)
    _, rv = _asked_reward("reward-clean", "gold")
    (rid,) = _tick(settings)
    params = _run(rid).params
    assert params["algorithm"] == algorithm and params["reward_version_id"] == rv
    assert "weighting" not in params and "max_judgment_id" not in params
    assert _tick(settings) == []
