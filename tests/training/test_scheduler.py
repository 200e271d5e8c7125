"""The training scheduler: reward runs after N judgments or T minutes, PPO after a new RM."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.config import get_settings
from app.db import session_scope
from app.models import (
    ModelKind,
    ModelStatus,
    ModelVersion,
    Run,
    RunKind,
    RunStatus,
    utcnow,
)
from tests.training.synth import candidates, judge, make_task_rows
from workers import scheduler


def _settings(**kw):  # type: ignore[no-untyped-def]
    base = {"rm_every_n": 0, "rm_every_minutes": 0.0, "ppo_after_reward": False}
    return get_settings().model_copy(update={**base, **kw})


def _policy(status: ModelStatus = ModelStatus.active) -> int:
    with session_scope() as s:
        mv = ModelVersion(version="policy-a", kind=ModelKind.policy, status=status, path="/x")
        s.add(mv)
        s.flush()
        return mv.id


def _reward(name: str) -> int:
    with session_scope() as s:
        mv = ModelVersion(version=name, kind=ModelKind.reward, status=ModelStatus.ready, path="/r")
        s.add(mv)
        s.flush()
        return mv.id


def _judgments(n: int, prefix: str = "q") -> None:
    tids = make_task_rows([(f"{prefix} {i}", [f"{prefix}a{i}", f"{prefix}b{i}"]) for i in range(n)])
    for tid in tids:
        a, b = candidates(tid)
        judge(tid, [[a], [b]], tag=prefix)


def _tick(settings, now=None) -> list[int]:  # type: ignore[no-untyped-def]
    with session_scope() as s:
        return scheduler.tick(s, settings, now)


def _finish(run_id: int, status: RunStatus = RunStatus.succeeded) -> None:
    with session_scope() as s:
        s.get(Run, run_id).status = status


def _run(run_id: int) -> Run:
    with session_scope() as s:
        return s.get(Run, run_id)  # type: ignore[return-value]


def test_off_when_zero():
    _policy()
    _judgments(5)
    _reward("reward-a")
    assert _tick(_settings()) == []
    assert _tick(_settings(), utcnow() + timedelta(days=30)) == []


def test_reward_run_after_n_new_judgments():
    _policy()
    settings = _settings(rm_every_n=3)
    _judgments(2, "a")
    assert _tick(settings) == []
    _judgments(1, "b")
    (rid,) = _tick(settings)
    run = _run(rid)
    assert run.kind == RunKind.reward and run.params["max_judgment_id"] == 3
    assert run.params["new_judgments"] == 3 and run.params["auto"] is True
    assert _tick(settings) == []  # one is already queued
    _finish(rid)
    assert _tick(settings) == []  # nothing new since
    _judgments(2, "c")
    assert _tick(settings) == []
    _judgments(1, "d")
    (rid2,) = _tick(settings)
    assert _run(rid2).params["max_judgment_id"] == 6


def test_failed_reward_run_is_not_retried_without_new_judgments():
    _policy()
    settings = _settings(rm_every_n=2)
    _judgments(2)
    (rid,) = _tick(settings)
    _finish(rid, RunStatus.failed)
    assert _tick(settings) == []


def test_reward_run_every_t_minutes_when_there_is_something_new():
    _policy()
    settings = _settings(rm_every_minutes=10)
    _judgments(1)
    assert _tick(settings) == []
    (rid,) = _tick(settings, utcnow() + timedelta(minutes=11))
    _finish(rid)
    # time alone is not enough: it needs new judgments too
    assert _tick(settings, utcnow() + timedelta(minutes=30)) == []
    _judgments(1, "z")
    assert len(_tick(settings, utcnow() + timedelta(minutes=30))) == 1


def test_no_reward_run_without_an_active_policy():
    _policy(ModelStatus.ready)
    _judgments(3)
    assert _tick(_settings(rm_every_n=1)) == []


def test_ppo_run_once_a_new_reward_model_is_ready():
    _policy()
    settings = _settings(ppo_after_reward=True)
    assert _tick(settings) == []  # no reward model yet
    rv = _reward("reward-a")
    (pid,) = _tick(settings)
    run = _run(pid)
    assert run.kind == RunKind.policy and run.params["reward_version_id"] == rv
    assert run.params["algorithm"] == "ppo"
    assert _tick(settings) == []  # queued already
    _finish(pid, RunStatus.failed)
    assert _tick(settings) == []  # that reward model was used
    rv2 = _reward("reward-b")
    (pid2,) = _tick(settings)
    assert _run(pid2).params["reward_version_id"] == rv2
    _finish(pid2)
    assert _tick(_settings(ppo_after_reward=False)) == []
    _reward("reward-c")
    assert _tick(_settings(ppo_after_reward=False)) == []


def test_ppo_waits_for_a_running_reward_run():
    _policy()
    settings = _settings(rm_every_n=1, ppo_after_reward=True)
    _reward("reward-a")
    _judgments(1)
    queued = _tick(settings)
    kinds = [_run(r).kind for r in queued]
    assert kinds == [RunKind.reward]  # PPO waits: a newer reward model is coming
    with session_scope() as s:
        assert s.scalar(select(Run.id).where(Run.kind == RunKind.policy)) is None


def test_worker_loop_runs_the_scheduler():
    from workers.runner import Worker

    _policy()
    _judgments(2)
    settings = _settings(rm_every_n=2, queue_target=0)
    worker = Worker(worker_id="w", settings=settings, kinds=[RunKind.generate])
    assert worker.tick() is False  # nothing it may claim, but the scheduler ran
    with session_scope() as s:
        queued = list(s.scalars(select(Run)))
    assert [(r.kind, r.status) for r in queued] == [(RunKind.reward, RunStatus.queued)]
