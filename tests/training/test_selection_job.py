"""Uncertainty selection in the generate job: a pool scored by the newest reward model in the
worker, the least certain pair kept (or a random one, the exploration share), the reason stored
on the task and shown in exports; random when no reward model is ready."""

from __future__ import annotations

import itertools
import json
import random

from sqlalchemy import select

from app.config import get_settings
from app.db import session_scope
from app.models import ComparisonTask, Completion, ModelKind, RunKind, RunStatus, TaskCandidate
from app.models_registry import service as registry
from ml.selection import RewardScorer, uncertainty
from tests.training.conftest import run_job
from tests.training.synth import POLITE, RUDE
from tests.workers.support import add_prompts
from workers.selection import Selection

PARAMS = {"prompts": 4, "k": 2, "max_new_tokens": 12, "temperature": 1.0, "seed": 3}


def _tasks(run_id: int) -> dict[int, tuple[str | None, float | None, float, list[str]]]:
    with session_scope() as s:
        rows = s.execute(
            select(
                ComparisonTask.id,
                ComparisonTask.selection_method,
                ComparisonTask.selection_score,
                ComparisonTask.priority,
                Completion.text,
            )
            .join(TaskCandidate, TaskCandidate.task_id == ComparisonTask.id)
            .join(Completion, Completion.id == TaskCandidate.completion_id)
            .where(ComparisonTask.run_id == run_id)
        ).all()
    out: dict[int, tuple] = {}
    for tid, method, score, prio, text in rows:
        out.setdefault(tid, (method, score, prio, []))[3].append(text)
    return out


def test_keep_picks_the_pair_the_reward_model_is_least_sure_about(tiny_reward_dir) -> None:
    scorer = RewardScorer(tiny_reward_dir)
    prompt = [{"role": "user", "content": "Can you help me?"}]
    pool = [POLITE[0], POLITE[1], RUDE[0], RUDE[1], POLITE[2]]
    rewards = dict(zip(pool, scorer.score(prompt, pool), strict=True))
    assert min(rewards[p] for p in POLITE[:3]) > max(rewards[r] for r in RUDE[:2])  # it learned
    sel = Selection(2, 5, 0.0, scorer, "rm", random.Random(0))
    kept, why = sel.keep(prompt, [(t, 1, "v") for t in pool])
    gaps = {(a, b): abs(rewards[a] - rewards[b]) for a, b in itertools.combinations(pool, 2)}
    best = min(gaps, key=gaps.get)  # type: ignore[arg-type]
    assert why is not None and why.method == "uncertainty"
    assert {t for t, _, _ in kept} == set(best)
    assert abs(why.gap - gaps[best]) < 1e-5 and why.priority == uncertainty(why.gap)


def test_uncertainty_run_records_method_score_and_priority(ready_reward) -> None:
    add_prompts(4)
    run = run_job(RunKind.generate, {**PARAMS, "selection": "uncertainty", "pool": 4,
                                     "explore": 0.0})  # fmt: skip
    assert run.status == RunStatus.succeeded, run.error
    with session_scope() as s:
        rm = registry.get_version(s, ready_reward)
        scorer_path = rm.path
    assert run.metrics["selection"] == "uncertainty"
    assert run.metrics["selection_reward_version"] == rm.version
    tasks = _tasks(run.id)
    assert tasks and run.metrics["selection_counts"] == {"uncertainty": len(tasks)}
    scorer = RewardScorer(scorer_path)
    with session_scope() as s:
        prompts = dict(
            s.execute(
                select(ComparisonTask.id, ComparisonTask.prompt_id).where(
                    ComparisonTask.id.in_(list(tasks))
                )
            ).all()
        )
        from app.models import Prompt

        messages = {p.id: p.messages for p in s.scalars(select(Prompt))}
    for tid, (method, score, prio, texts) in tasks.items():
        assert method == "uncertainty" and len(texts) == 2
        r = scorer.score(messages[prompts[tid]], texts)
        assert abs(abs(r[0] - r[1]) - score) < 1e-4  # the stored gap is the kept pair's
        assert abs(prio - uncertainty(score)) < 1e-5 and 0 < prio <= 1


def test_explore_share_one_keeps_random_pairs_but_still_scores(ready_reward) -> None:
    add_prompts(3)
    run = run_job(RunKind.generate, {**PARAMS, "prompts": 3, "selection": "uncertainty",
                                     "explore": 1.0})  # fmt: skip
    assert run.status == RunStatus.succeeded, run.error
    tasks = _tasks(run.id)
    assert tasks and all(m == "explore" and s is not None for m, s, _, _ in tasks.values())


def test_without_a_reward_model_selection_is_random(active_tiny_policy) -> None:
    add_prompts(2)
    run = run_job(RunKind.generate, {**PARAMS, "prompts": 2, "selection": "uncertainty"})
    assert run.status == RunStatus.succeeded, run.error
    assert "no reward model is ready" in run.log_tail
    tasks = _tasks(run.id)
    assert tasks and all(m == "random" and s is None and p == 0 for m, s, p, _ in tasks.values())


def test_setting_switches_and_bad_params_fail_clearly(ready_reward, monkeypatch) -> None:
    add_prompts(2)
    run = run_job(RunKind.generate, {**PARAMS, "prompts": 2, "selection": "best"})
    assert run.status == RunStatus.failed and "selection must be" in (run.error or "")
    run = run_job(RunKind.generate, {**PARAMS, "prompts": 2, "selection": "uncertainty",
                                     "explore": 2})  # fmt: skip
    assert run.status == RunStatus.failed and "explore" in (run.error or "")
    monkeypatch.setenv("PREFLOOP_SELECTION", "uncertainty")
    get_settings.cache_clear()
    try:
        run = run_job(RunKind.generate, {**PARAMS, "prompts": 2})
    finally:
        get_settings.cache_clear()
    assert run.metrics["selection"] == "uncertainty", run.error
    with session_scope() as s:
        assert registry.active_version(s, ModelKind.reward) is None  # ready, not active: used


def test_exports_tell_how_a_task_was_chosen(ready_reward, client) -> None:
    from tests.exports.helpers import candidates, judge
    from tests.factories import auth, make_user

    add_prompts(2)
    run = run_job(RunKind.generate, {**PARAMS, "prompts": 2, "selection": "uncertainty",
                                     "explore": 0.0})  # fmt: skip
    tasks = _tasks(run.id)
    researcher = make_user("res", role="researcher")
    make_user("lab")
    for tid in tasks:
        a, b = candidates(tid)
        judge(tid, "lab", [[a], [b]], choice="a")
    for shape in ("raw", "rankings"):
        r = client.get(
            "/api/v1/exports/preferences",
            params={"shape": shape, "format": "jsonl"},
            headers=auth(researcher),
        )
        assert r.status_code == 200, r.text
        out = [json.loads(line) for line in r.text.splitlines() if line]
        assert {row["task_id"] for row in out} == set(tasks)
        for row in out:
            assert row["selection_method"] == "uncertainty"
            assert abs(row["selection_score"] - tasks[row["task_id"]][1]) < 1e-9
