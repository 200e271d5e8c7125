"""Reward-model rows from judgments and PPO prompts from the database."""

from __future__ import annotations

from app.db import session_scope
from tests.training.synth import candidates, judge, make_task_rows
from workers.datasets import ppo_prompts, reward_rows, split_keys


def _texts(rows):  # type: ignore[no-untyped-def]
    return sorted((r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows)


def _all(data):  # type: ignore[no-untyped-def]
    return data.train + data.eval


def test_kwise_ranking_gives_every_ordered_pair():
    (tid,) = make_task_rows([("Q", ["a1", "a2", "a3", "a4"])])
    a, b, c, d = candidates(tid)
    jid = judge(tid, [[a], [b], [c], [d]])
    with session_scope() as s:
        data = reward_rows(s, min_agreement=0.5)
    pairs = _texts(_all(data))
    assert pairs == sorted(
        [("a1", "a2"), ("a1", "a3"), ("a1", "a4"), ("a2", "a3"), ("a2", "a4"), ("a3", "a4")]
    )
    row = _all(data)[0]
    assert row["prompt"] == [{"role": "user", "content": "Q"}]
    assert row["chosen"][0]["role"] == "assistant"
    assert data.judgment_ids == [jid]


def test_ties_and_both_bad_give_no_pair_but_are_counted():
    t1, t2 = make_task_rows([("Q1", ["x", "y", "z"]), ("Q2", ["u", "v"])])
    x, y, z = candidates(t1)
    u, v = candidates(t2)
    j1 = judge(t1, [[x, y], [z]])
    j2 = judge(t2, [[u, v]], choice="both_bad")
    with session_scope() as s:
        data = reward_rows(s, min_agreement=0.5)
    assert _texts(_all(data)) == [("x", "z"), ("y", "z")]
    assert data.stats["pairs_tied"] == 2  # x~y and u~v
    assert data.stats["both_bad_judgments"] == 1
    assert data.judgment_ids == [j1, j2]


def test_majority_vote_and_minimum_agreement():
    (tid,) = make_task_rows([("Q", ["good", "bad"])])
    g, b = candidates(tid)
    for ranking in ([[g], [b]], [[g], [b]], [[b], [g]]):
        judge(tid, ranking)
    with session_scope() as s:
        kept = reward_rows(s, min_agreement=0.6)
        dropped = reward_rows(s, min_agreement=0.7)
    assert _texts(_all(kept)) == [("good", "bad")]  # 2 of 3 agree: one pair, majority's way
    assert _all(dropped) == [] and dropped.stats["pairs_low_agreement"] == 1
    # a level vote is no preference at all
    judge(tid, [[b], [g]])
    with session_scope() as s:
        level = reward_rows(s, min_agreement=0.0)
    assert _all(level) == [] and level.stats["pairs_tied"] == 1


def test_max_judgment_id_reproduces_an_earlier_dataset():
    (tid,) = make_task_rows([("Q", ["one", "two"])])
    o, t = candidates(tid)
    first = judge(tid, [[o], [t]])
    judge(tid, [[t], [o]])
    judge(tid, [[t], [o]])
    with session_scope() as s:
        old = reward_rows(s, 0.5, max_judgment_id=first)
        new = reward_rows(s, 0.5)
    assert _texts(_all(old)) == [("one", "two")] and old.judgment_ids == [first]
    assert _texts(_all(new)) == [("two", "one")]


def test_split_is_by_prompt_disjoint_and_deterministic():
    rows = []
    for i in range(30):
        rows += [(f"prompt {i}", [f"r{i}a", f"r{i}b"]), (f"prompt {i}", [f"r{i}c", f"r{i}d"])]
    ids = make_task_rows(rows)
    for tid in ids:
        a, b = candidates(tid)
        judge(tid, [[a], [b]])
    with session_scope() as s:
        data = reward_rows(s, 0.5, eval_fraction=0.3)
        again = reward_rows(s, 0.5, eval_fraction=0.3)
    train_prompts = {r["prompt"][0]["content"] for r in data.train}
    eval_prompts = {r["prompt"][0]["content"] for r in data.eval}
    assert train_prompts and eval_prompts
    assert not train_prompts & eval_prompts
    assert len(train_prompts | eval_prompts) == 30
    # both tasks of a prompt land on the same side
    assert len(data.train) == 2 * len(train_prompts) and len(data.eval) == 2 * len(eval_prompts)
    assert 0.1 < len(eval_prompts) / 30 < 0.6
    assert data.train == again.train and data.eval == again.eval


def test_split_keys_keeps_both_sides_non_empty():
    train, held = split_keys(["a", "b"], 0.01, "s")
    assert len(train) == 1 and len(held) == 1
    train, held = split_keys(["a", "b", "c"], 0.99, "s")
    assert train and held and not train & held
    assert split_keys(["only"], 0.5, "s")[0] | split_keys(["only"], 0.5, "s")[1] == {"only"}


def test_ppo_prompts_hold_out_a_deterministic_disjoint_part():
    make_task_rows([(f"ppo prompt {i}", ["a", "b"]) for i in range(20)])
    with session_scope() as s:
        train, held = ppo_prompts(s, heldout_fraction=0.25)
        train2, held2 = ppo_prompts(s, heldout_fraction=0.25)
        capped, capped_held = ppo_prompts(s, heldout_fraction=0.25, max_train=3, max_heldout=2)
    t = {m[0]["content"] for m in train}
    h = {m[0]["content"] for m in held}
    assert t and h and not t & h and len(t | h) == 20
    assert (train, held) == (train2, held2)
    assert len(capped) == 3 and len(capped_held) == 2
    assert {m[0]["content"] for m in capped} <= t
