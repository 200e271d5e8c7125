"""Synthetic preferences stored as real rows: prompts, tasks, and judgments."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

from sqlalchemy import select

from app.db import session_scope
from app.models import Completion, Judgment, TaskCandidate
from app.prompts import parsing, store
from ml.tiny import PROMPTS, REPLIES

POLITE = [r for r in REPLIES if any(w in r for w in ("hank", "lease", "Sure", "course", "glad"))]
RUDE = [r for r in REPLIES if r not in POLITE]


def make_task_rows(rows: Sequence[tuple[str, Sequence[str]]]) -> list[int]:
    """Create one comparison task per (prompt, completions); returns task ids in order."""
    lines = [json.dumps({"prompt": p, "completions": list(cs)}) for p, cs in rows]
    records = parsing.parse(("\n".join(lines) + "\n").encode(), "comparisons", "jsonl")
    with session_scope() as s:
        _, ids = store.import_comparisons(s, records, 1)
    return ids


def candidates(task_id: int) -> list[int]:
    """Completion ids of a task in canonical order."""
    with session_scope() as s:
        return list(
            s.scalars(
                select(TaskCandidate.completion_id)
                .where(TaskCandidate.task_id == task_id)
                .order_by(TaskCandidate.position)
            )
        )


def judge(task_id: int, ranking: list[list[int]], choice: str | None = None, tag: str = "") -> int:
    """Store an imported-style judgment; returns its id."""
    with session_scope() as s:
        n = s.scalar(select(Judgment.id).order_by(Judgment.id.desc()).limit(1)) or 0
        j = Judgment(
            task_id=task_id,
            source="synthetic",
            external_id=f"{tag}{n + 1}",
            ranking=ranking,
            choice=choice,
        )
        s.add(j)
        s.flush()
        return j.id


def seed_polite_preferences(
    n_prompts: int = 24, tasks_per_prompt: int = 3, k: int = 3, seed: int = 0
) -> int:
    """Tasks over the tiny model's prompts where polite replies are ranked above rude ones (polite
    replies tied with each other, rude ones too). Returns the number of judgments stored."""
    rng = random.Random(seed)
    prompts = [
        PROMPTS[i % len(PROMPTS)] + ("" if i < len(PROMPTS) else f" Question {i}.")
        for i in range(n_prompts)
    ]
    rows = []
    for p in prompts:
        for _ in range(tasks_per_prompt):
            n_polite = rng.randint(1, k - 1)
            picks = rng.sample(POLITE, n_polite) + rng.sample(RUDE, k - n_polite)
            rng.shuffle(picks)
            rows.append((p, picks))
    task_ids = make_task_rows(rows)
    with session_scope() as s:
        cands = s.execute(
            select(TaskCandidate.task_id, Completion.id, Completion.text)
            .join(Completion, Completion.id == TaskCandidate.completion_id)
            .where(TaskCandidate.task_id.in_(task_ids))
            .order_by(TaskCandidate.task_id, TaskCandidate.position)
        ).all()
        by_task: dict[int, list[tuple[int, str]]] = {}
        for tid, cid, text in cands:
            by_task.setdefault(tid, []).append((cid, text))
        for n, tid in enumerate(task_ids):
            polite = [c for c, t in by_task[tid] if t in POLITE]
            rude = [c for c, t in by_task[tid] if t in RUDE]
            s.add(
                Judgment(
                    task_id=tid,
                    source="synthetic",
                    external_id=f"polite-{seed}-{n}",
                    ranking=[polite, rude],
                )
            )
    return len(task_ids)
