"""K-wise rankings for DPO (and the reward run): K(K-1)/2 ordered pairs, ties none, every pair of
a ranking on one side of the split, and a per-run count of the pairs from K-wise tasks."""

from __future__ import annotations

from app.db import session_scope
from tests.training.synth import candidates, judge, make_task_rows
from workers.datasets import reward_rows


def test_kwise_counts_and_ties_give_none():
    tasks = make_task_rows(
        [("K4 strict", ["a", "b", "c", "d"]), ("K4 tie", ["e", "f", "g", "h"]), ("K2", ["i", "j"])]
    )
    a, b, c, d = candidates(tasks[0])
    e, f, g, h = candidates(tasks[1])
    i, j = candidates(tasks[2])
    judge(tasks[0], [[a], [b], [c], [d]])  # 4*3/2 = 6 pairs
    judge(tasks[1], [[e], [f, g], [h]])  # 6 minus the tied f-g pair = 5
    judge(tasks[2], [[i], [j]])  # 1
    with session_scope() as s:
        data = reward_rows(s, min_agreement=0.5, eval_fraction=0.0)
    st = data.stats
    assert st["pairs_kept"] == 12 and st["pairs_tied"] == 1
    assert st["pairs_kwise"] == 11 and st["kwise_tasks"] == 2


def test_every_pair_of_a_ranking_stays_on_one_side():
    rows = [(f"prompt {n}", [f"r{n}-{k}" for k in range(4)]) for n in range(40)]
    for tid in make_task_rows(rows):
        judge(tid, [[x] for x in candidates(tid)])
    with session_scope() as s:
        data = reward_rows(s, min_agreement=0.5, eval_fraction=0.3)
    train_prompts = {r["prompt"][0]["content"] for r in data.train}
    eval_prompts = {r["prompt"][0]["content"] for r in data.eval}
    assert train_prompts and eval_prompts and not train_prompts & eval_prompts
    # each side holds whole rankings: 6 pairs per prompt
    assert len(data.train) == 6 * len(train_prompts) and len(data.eval) == 6 * len(eval_prompts)
    assert len(data.eval_groups) == len(data.eval) and len(set(data.eval_groups)) == len(
        eval_prompts
    )
    assert data.stats["pairs_kwise"] == 240
