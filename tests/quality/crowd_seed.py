"""Store a simulated crowd (app.quality.crowd) as real rows: labelers, tasks, gold, judgments."""

from __future__ import annotations

import json

from sqlalchemy import select

from app.db import session_scope
from app.models import ComparisonTask, Judgment, TaskCandidate, TaskStatus, User
from app.prompts import parsing, store
from app.quality.crowd import Crowd, simulate, synthetic_pairs
from tests.factories import make_user


def seed_crowd(
    n_pairs: int = 600,
    seed: int = 0,
    names: dict[int, str] | None = None,
    kinds: dict[str, int] | None = None,
) -> Crowd:
    """`kinds`: labelers per kind (app.quality.crowd.DEFAULT_CROWD when None)."""
    pairs = synthetic_pairs(n_pairs)
    crowd = simulate(pairs, seed, kinds)
    names = names or {}
    for uid, kind in crowd.kinds.items():
        make_user(names.get(uid, f"{kind.replace('_', '-')}-{uid}"))
    lines = [json.dumps({"prompt": f"Question {p.id}?", "completions": [f"good {p.id}",
             f"bad {p.id}"]}) for p in pairs]  # fmt: skip
    records = parsing.parse(("\n".join(lines) + "\n").encode(), "comparisons", "jsonl")
    with session_scope() as s:
        _, task_ids = store.import_comparisons(s, records, 3)
    with session_scope() as s:
        users = dict(s.execute(select(User.name, User.id)).all())
        uid_of = {
            u: users[names.get(u, f"{k.replace('_', '-')}-{u}")] for u, k in crowd.kinds.items()
        }
        cands = {}
        for tid, pos, cid in s.execute(
            select(TaskCandidate.task_id, TaskCandidate.position, TaskCandidate.completion_id)
        ):
            cands.setdefault(tid, {})[pos] = cid
        # sim candidate 2i is task i's position 0 (the better one), 2i+1 its position 1
        cid = {}
        for p in pairs:
            c = cands[task_ids[p.id]]
            cid[p.better], cid[p.worse] = c[0], c[1]
        counts: dict[int, int] = {}
        for f in crowd.facts:
            tid = task_ids[f.task_id]
            s.add(Judgment(
                task_id=tid, user_id=uid_of[f.user_id],
                ranking=[[cid[c] for c in g] for g in f.ranking],
                shown_order=[cid[c] for c in f.shown_order or []],
                time_spent_ms=f.time_spent_ms, created_at=f.created_at,
            ))  # fmt: skip
            counts[tid] = counts.get(tid, 0) + 1
        for t in s.scalars(select(ComparisonTask)):
            if t.id in {task_ids[g] for g in crowd.gold_ids}:
                c = cands[t.id]
                t.status, t.gold = TaskStatus.gold, {"accept": [[[c[0]], [c[1]]]]}
            else:
                t.judgment_count = counts.get(t.id, 0)
                t.status = TaskStatus.complete if t.judgment_count >= 3 else TaskStatus.open
    return crowd
