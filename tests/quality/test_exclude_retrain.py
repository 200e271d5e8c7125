"""Exclude and retrain, end to end through a real worker and TRL on a tiny model: the new reward
version's recorded judgment ids hold none of the excluded labeler's (run on PostgreSQL in CI),
the policy run is queued after it, and lineage lists what used the labeler before."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import _discover, root
from app.db import session_scope
from app.models import Judgment, ModelVersion, Run, RunKind, RunStatus
from app.quality import lineage
from tests.factories import make_user
from tests.training.conftest import run_job
from tests.training.synth import seed_polite_preferences
from workers.jobs.training import expand_ranges
from workers.runner import Worker

_discover()

FAST_RM = {"learning_rate": 2e-3, "num_train_epochs": 1, "batch_size": 8, "max_length": 128}


def _give_to(name: str, every: int) -> list[int]:
    """Hand every `every`-th seeded judgment to labeler `name`; returns their ids."""
    make_user(name)
    with session_scope() as s:
        from app.models import User

        uid = s.scalar(select(User.id).where(User.name == name))
        js = list(s.scalars(select(Judgment).order_by(Judgment.id)))[::every]
        for j in js:
            j.user_id, j.source, j.external_id = uid, None, None
        return [j.id for j in js]


def test_exclude_and_retrain_trains_without_the_labeler(active_tiny_policy):
    from app.config import get_settings

    seed_polite_preferences(n_prompts=8, tasks_per_prompt=2, k=2)
    mallory = _give_to("mallory", 3)
    before = run_job(RunKind.reward, FAST_RM)
    assert before.status == RunStatus.succeeded, before.error
    runner = CliRunner()
    r = runner.invoke(root, ["labelers", "exclude", "mallory", "--retrain"])
    assert r.exit_code == 0, r.output
    assert f"excluded {len(mallory)} judgments" in r.output
    assert runner.invoke(root, ["labelers", "exclude", "mallory"]).exit_code == 1  # already
    assert runner.invoke(root, ["labelers", "exclude", "nobody"]).exit_code == 1
    with session_scope() as s:
        run = s.scalar(select(Run).where(Run.kind == RunKind.reward).order_by(Run.id.desc()))
        assert run.params["then_policy"] is True
        run.params = {**run.params, **FAST_RM}
    settings = get_settings().model_copy(update={"ppo_after_reward": False})
    worker = Worker(worker_id="test-worker", settings=settings, fill_queue=False)
    assert worker.tick()
    with session_scope() as s:
        done = s.get(Run, run.id)
        assert done.status == RunStatus.succeeded, (done.error, done.log_tail)
        new = s.get(ModelVersion, done.metrics["reward_version_id"])
        old = s.get(ModelVersion, before.metrics["reward_version_id"])
        used = set(expand_ranges(new.metrics["judgment_id_ranges"]))
        assert used and not used & set(mallory)
        assert set(mallory) <= set(expand_ranges(old.metrics["judgment_id_ranges"]))
        from app.models import User

        uid = s.scalar(select(User.id).where(User.name == "mallory"))
        lin = lineage.of_labeler(s, uid, "mallory")
        assert [u.id for u in lin.rewards] == [old.id]  # the new version never used mallory
    # the policy run the exclusion asked for follows its reward run (PPO_AFTER_REWARD is off)
    from workers.scheduler import tick

    with session_scope() as s:
        queued = tick(s, settings)
    with session_scope() as s:
        ppo = [s.get(Run, i) for i in queued]
        assert [p.kind for p in ppo] == [RunKind.policy]
        assert ppo[0].params["reward_version_id"] == new.id
    r = runner.invoke(root, ["labelers", "include", "mallory"])
    assert r.exit_code == 0 and "undone" in r.output
    from app.models import AuditEvent

    with session_scope() as s:
        events = [(e.action, e.actor_name) for e in s.scalars(select(AuditEvent))
                  if e.action.startswith("labeler.")]  # fmt: skip
    assert [a for a, _ in events] == ["labeler.exclude", "labeler.include"]
    assert all(who.startswith("cli") for _, who in events)


FAST_DPO = {"learning_rate": 1e-3, "batch_size": 8, "num_train_epochs": 1, "max_heldout": 6,
            "eval_samples_per_prompt": 2, "bootstrap_samples": 200, "seed": 0}  # fmt: skip


@pytest.mark.parametrize("weighting", ["none", "agreement"])
def test_exclude_and_retrain_with_dpo(weighting, active_tiny_policy):
    """PREFLOOP_POLICY_ALGORITHM=dpo: after the exclusion's reward run, the scheduler queues the
    DPO run once (DPO_EVERY_N is off), on the same clean judgments, gated by the clean reward
    model, with the reward run's weighting; neither version's recorded judgment ids hold the
    labeler's."""
    from app.config import get_settings
    from app.models import User
    from workers.scheduler import tick

    seed_polite_preferences(n_prompts=8, tasks_per_prompt=2, k=2)
    mallory = _give_to("mallory", 3)
    settings = get_settings().model_copy(
        update={
            "policy_algorithm": "dpo",
            "dpo_every_n": 0,
            "rm_every_n": 0,
            "rm_every_minutes": 0.0,
        }  # fmt: skip
    )
    before = run_job(RunKind.policy, {"algorithm": "dpo", **FAST_DPO, "auto_promote": False})
    assert before.status == RunStatus.succeeded, before.error
    cmd = ["labelers", "exclude", "mallory", "--retrain", "--weighting", weighting]
    r = CliRunner().invoke(root, cmd)
    assert r.exit_code == 0, r.output
    with session_scope() as s:
        assert tick(s, settings) == []  # the reward run comes first
        run = s.scalar(select(Run).where(Run.kind == RunKind.reward).order_by(Run.id.desc()))
        run.params = {**run.params, **FAST_RM}
    worker = Worker(worker_id="test-worker", settings=settings, fill_queue=False)
    assert worker.tick()
    with session_scope() as s:
        reward = s.get(Run, run.id)
        assert reward.status == RunStatus.succeeded, (reward.error, reward.log_tail)
        rv = s.get(ModelVersion, reward.metrics["reward_version_id"])
        reward_ids = set(expand_ranges(rv.metrics["judgment_id_ranges"]))
        queued = tick(s, settings)
    assert len(queued) == 1
    with session_scope() as s:
        dpo = s.get(Run, queued[0])
        assert dpo.kind == RunKind.policy and dpo.params["algorithm"] == "dpo"
        assert dpo.params["reward_version_id"] == rv.id
        assert dpo.params["max_judgment_id"] == max(reward_ids)
        assert dpo.params.get("weighting", "none") == weighting
        dpo.params = {**dpo.params, **FAST_DPO}
        assert tick(s, settings) == []  # once
    assert worker.tick()
    with session_scope() as s:
        done = s.get(Run, queued[0])
        assert done.status == RunStatus.succeeded, (done.error, done.log_tail)
        pv = s.get(ModelVersion, done.metrics["policy_version_id"])
        versions = s.scalars(select(ModelVersion).where(ModelVersion.run_id == done.id)).all()
        (new,) = versions
        assert new.metrics["reward_version_id"] == rv.id  # the clean model gated it
        assert done.metrics.get("weighting", "none") == weighting
        assert rv.metrics.get("weighting", "none") == weighting
        used = set(expand_ranges(new.metrics["judgment_id_ranges"]))
        assert used and not used & set(mallory) and used <= reward_ids
        assert reward_ids and not reward_ids & set(mallory)
        old = s.scalar(select(ModelVersion).where(ModelVersion.run_id == before.id))
        assert set(mallory) <= set(expand_ranges(old.metrics["judgment_id_ranges"]))
        uid = s.scalar(select(User.id).where(User.name == "mallory"))
        lin = lineage.of_labeler(s, uid, "mallory")
        assert [u.id for u in lin.policies] == [old.id]  # the DPO version before, not after
        assert pv.id == active_tiny_policy  # `before` was left ready, not promoted
        assert tick(s, settings) == []


def test_exclude_weighting_is_checked(client):
    """A bad weighting is a 422 naming the field (API) or a clear error (CLI); nothing changes."""
    from tests.exports.helpers import user_id
    from tests.factories import auth

    admin = auth(make_user("root", "admin"))
    make_user("lab")
    r = client.post(f"/api/v1/labelers/{user_id('lab')}/exclude", json={"weighting": "trust"},
                    headers=admin)  # fmt: skip
    assert r.status_code == 422 and "weighting" in r.text
    r = CliRunner().invoke(root, ["labelers", "exclude", "lab", "--retrain", "--weighting", "x"])
    assert r.exit_code == 1 and "--weighting" in r.output
    with session_scope() as s:
        assert s.scalar(select(Run)) is None
    r = client.post(f"/api/v1/labelers/{user_id('lab')}/exclude", json={"weighting": "gold"},
                    headers=admin)  # fmt: skip
    assert r.status_code == 200
    with session_scope() as s:
        assert s.scalar(select(Run)).params["weighting"] == "gold"
