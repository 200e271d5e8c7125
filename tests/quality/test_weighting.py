"""Trust-weighted training data: weighted majority votes, per-pair weights, run records."""

from __future__ import annotations

from datetime import timedelta

from app.db import session_scope
from app.models import Judgment, RunKind, RunStatus, utcnow
from app.quality import service
from app.quality.gold import GoldIn
from app.quality.weighting import weighted_pairs
from tests.exports.helpers import candidates, user_id
from tests.factories import make_user
from tests.training.conftest import run_job
from tests.training.synth import POLITE, RUDE, make_task_rows
from workers.datasets import reward_rows


def _outvoted_crowd(n_tasks: int = 12) -> list[int]:
    """good is right everywhere; bad1 and bad2 are wrong everywhere (and outvote good).
    The first 4 tasks are gold. Candidate 0 is always the polite (right) one."""
    for n in ("good", "bad1", "bad2"):
        make_user(n)
    uids = {n: user_id(n) for n in ("good", "bad1", "bad2")}
    rows = [(f"Question {i}?", [POLITE[i % len(POLITE)], RUDE[i % len(RUDE)]])
            for i in range(n_tasks)]  # fmt: skip
    tasks = make_task_rows(rows)
    at = utcnow() - timedelta(minutes=5)
    with session_scope() as s:
        for t in tasks:
            a, b = candidates(t)
            for name, uid in uids.items():
                ranking = [[a], [b]] if name == "good" else [[b], [a]]
                s.add(Judgment(task_id=t, user_id=uid, ranking=ranking, shown_order=[a, b],
                               created_at=at))  # fmt: skip
    with session_scope() as s:
        for t in tasks[:4]:
            service.set_gold(s, t, GoldIn(choice="a"))
    return tasks


def test_gold_weighting_recovers_outvoted_truth():
    tasks = _outvoted_crowd()
    with session_scope() as s:
        plain = reward_rows(s, 0.0, 0.0)
        weighted = reward_rows(s, 0.0, 0.0, weighting="gold")
    polite = set(POLITE)
    assert len(plain.train) == len(weighted.train) == len(tasks) - 4
    assert all(r["chosen"][0]["content"] not in polite for r in plain.train)  # majority is wrong
    assert all(r["chosen"][0]["content"] in polite for r in weighted.train)
    assert all(0 < r["weight"] <= 3 for r in weighted.train)
    assert weighted.stats["weighting"] == "gold"
    w = weighted.stats["labeler_weights"]
    assert w["bad1"] == w["bad2"] == 0.0 and w["good"] > 1


def test_weighted_votes_formula():
    class J:
        def __init__(self, task_id, ranking, user_id):  # type: ignore[no-untyped-def]
            self.task_id, self.ranking, self.choice, self.user_id = task_id, ranking, None, user_id

    js = [J(1, [[10], [11]], 1), J(1, [[11], [10]], 2), J(1, [[11], [10]], None)]
    pairs, dropped = weighted_pairs(js, {1: 2.0, 2: 0.5})  # mean weight 1.25 for the import
    (p,) = pairs
    # 2.0 for 10 over 11 against 0.5 + 1.25 the other way: one trusted labeler outweighs two
    assert (p.winner_id, p.loser_id, p.votes) == (10, 11, 3)
    assert abs(p.agreement - 2.0 / 3.75) < 1e-9
    assert abs(p.weight - 0.25 / (3 * 1.25)) < 1e-9 and dropped == {"tied": 0, "low_agreement": 0}
    pairs, dropped = weighted_pairs(js, {1: 2.0, 2: 0.5}, min_agreement=0.55)
    assert pairs == [] and dropped["low_agreement"] == 1


def test_reward_run_records_weighting(active_tiny_policy):
    _outvoted_crowd(16)
    fast = {"learning_rate": 2e-3, "num_train_epochs": 1, "batch_size": 8, "max_length": 128}
    run = run_job(RunKind.reward, {**fast, "weighting": "gold", "eval_fraction": 0.25})
    assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    assert run.metrics["weighting"] == "gold"
    assert set(run.metrics["labeler_weights"]) == {"good", "bad1", "bad2"}
    import pytest

    from app.runs.service import RunParamError, create_run

    with pytest.raises(RunParamError, match="weighting"), session_scope() as s:
        create_run(s, RunKind.reward, {"weighting": "trust-me"}, None)


def test_run_form_offers_weighting():
    import pytest

    from app.admin import forms

    assert forms.parse("reward", {"weighting": "gold"})["weighting"] == "gold"
    with pytest.raises(forms.FormError, match="Trust weighting"):
        forms.parse("reward", {"weighting": "<b>x</b>"})
