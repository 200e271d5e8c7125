"""Battles written straight into the database (as an import would) for page and API tests."""

from __future__ import annotations

import random

from sqlalchemy import select

from app.db import session_scope
from app.models import Battle, Judgment, TaskCandidate
from tests.factories import make_tasks


def seed_battles(
    strengths: dict[str, float], n: int, seed: int = 0, prefix: str = "b"
) -> list[tuple[str, str, float]]:
    """n judged battles between models with the given win probabilities against a coin
    (P(x beats y) = sx / (sx + sy)); returns the outcomes written."""
    rng = random.Random(seed)
    names = list(strengths)
    tasks = make_tasks(n, k=2, prefix=prefix)
    out = []
    with session_scope() as s:
        for i, tid in enumerate(tasks):
            a, b = rng.sample(names, 2)
            ca, cb = s.scalars(
                select(TaskCandidate.completion_id)
                .where(TaskCandidate.task_id == tid)
                .order_by(TaskCandidate.position)
            ).all()
            s.add(Battle(task_id=tid, model_a=a, model_b=b, completion_a_id=ca,
                         completion_b_id=cb, source="test"))  # fmt: skip
            p = strengths[a] / (strengths[a] + strengths[b])
            win = rng.random() < p
            ranking = [[ca], [cb]] if win else [[cb], [ca]]
            s.add(Judgment(task_id=tid, source="test", external_id=str(i), ranking=ranking))
            out.append((a, b, 1.0 if win else 0.0))
    return out
