"""Votes of excluded labelers count neither in the arena's ratings nor in the promotion gate's
battles; undoing the exclusion brings them back (SQLite, or PostgreSQL in CI)."""

from __future__ import annotations

from sqlalchemy import select

from app.arena import service as arena
from app.db import session_scope
from app.models import (
    ArenaCampaign,
    Battle,
    Judgment,
    ModelKind,
    ModelStatus,
    ModelVersion,
    TaskCandidate,
)
from app.quality import service as quality
from tests.exports.helpers import user_id
from tests.factories import make_tasks, make_user


def _campaign() -> tuple[int, str, str]:
    """A gate campaign: candidate 'cand' against baseline 'base'."""
    with session_scope() as s:
        base = ModelVersion(version="base", kind=ModelKind.policy, status=ModelStatus.active,
                            path="/b")  # fmt: skip
        cand = ModelVersion(version="cand", kind=ModelKind.policy, status=ModelStatus.ready,
                            path="/c")  # fmt: skip
        s.add_all([base, cand])
        s.flush()
        c = ArenaCampaign(name="gate", version_ids=[base.id, cand.id], purpose="gate",
                          candidate_id=cand.id, baseline_id=base.id)  # fmt: skip
        s.add(c)
        s.flush()
        return c.id, "cand", "base"


def _battles(cid: int, votes: dict[str, int], prefix: str) -> None:
    """One battle (cand as A) per vote: `votes[name]` battles each judged by that labeler,
    'good' for the candidate, anyone else for the baseline."""
    total = sum(votes.values())
    tasks = iter(make_tasks(total, k=2, prefix=prefix))
    uids = {name: user_id(name) for name in votes}
    with session_scope() as s:
        for name, n in votes.items():
            uid = uids[name]
            for _ in range(n):
                tid = next(tasks)
                ca, cb = s.scalars(
                    select(TaskCandidate.completion_id)
                    .where(TaskCandidate.task_id == tid)
                    .order_by(TaskCandidate.position)
                ).all()
                s.add(Battle(task_id=tid, campaign_id=cid, model_a="cand", model_b="base",
                             completion_a_id=ca, completion_b_id=cb, source="test"))  # fmt: skip
                win = name == "good"
                s.add(Judgment(task_id=tid, user_id=uid,
                               ranking=[[ca], [cb]] if win else [[cb], [ca]]))  # fmt: skip


def _state(cid: int) -> tuple[int, dict[str, float], str, int]:
    with session_scope() as s:
        b = arena.board(s, rounds=20)
        verdict, rate = arena.gate_verdict(s, s.get(ArenaCampaign, cid), 10, 100)
    ratings = {r["model"]: r["rating"] for r in b["ratings"]}
    return b["battles"], ratings, verdict, rate.battles


def test_excluded_votes_leave_ratings_and_gate_until_undone():
    for name in ("good", "mallory"):
        make_user(name)
    cid, _, _ = _campaign()
    _battles(cid, {"good": 12, "mallory": 20}, "x")
    n, ratings, verdict, gate_n = _state(cid)
    assert (n, gate_n) == (32, 32) and ratings["base"] > ratings["cand"]
    assert verdict in ("wait", "reject")  # 12 of 32: the baseline looks better
    mallory = user_id("mallory")
    with session_scope() as s:
        quality.exclude(s, mallory, None, retrain=False)
    n, ratings, verdict, gate_n = _state(cid)
    assert (n, gate_n) == (12, 12) and ratings["cand"] > ratings["base"]
    assert verdict == "promote"  # 12 of 12 for the candidate
    # a vote that slips in while the exclusion is open (not marked excluded) does not count
    _battles(cid, {"mallory": 1}, "late")
    with session_scope() as s:
        late = s.scalar(select(Judgment).order_by(Judgment.id.desc()).limit(1))
        assert late.user_id == mallory and late.excluded is False
    assert _state(cid)[0] == 12
    with session_scope() as s:
        quality.undo_exclusion(s, mallory, None)
    n, ratings, verdict, gate_n = _state(cid)
    assert (n, gate_n) == (33, 33) and ratings["base"] > ratings["cand"]
    assert verdict in ("wait", "reject")


def test_exclusion_takes_back_live_leases(client):
    """An excluded labeler cannot submit on a lease taken before the exclusion (that judgment
    would not be marked excluded)."""
    from tests.factories import auth

    token = make_user("lab")
    make_tasks(2)
    first = client.get("/api/v1/tasks/next", headers=auth(token)).json()
    lab = user_id("lab")
    with session_scope() as s:
        quality.exclude(s, lab, None, retrain=False)
    body = {"ranking": [[c["id"]] for c in first["candidates"]]}
    r = client.post(f"/api/v1/tasks/{first['task_id']}/judgments", json=body, headers=auth(token))
    assert r.status_code in (403, 409), r.text
    with session_scope() as s:
        assert s.scalar(select(Judgment).where(Judgment.user_id == lab)) is None
    assert client.get("/api/v1/tasks/next", headers=auth(token)).status_code == 204
