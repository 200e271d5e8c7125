"""Rows of each export shape, built one task at a time, plus their Parquet schemas.

- trl: one row per ordered pair from the majority vote of a task's judgments
  ({prompt, chosen, rejected} explicit-prompt rows; conversational message lists when any
  selected prompt is chat-shaped, so every row has the same type). Tied majorities give no row.
- raw: one row per judgment, every field a labeler gave, with pseudonymous labeler ids.
- rankings: one row per task with all its K-wise rankings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from app.exports.query import Candidate, JudgmentRow, TaskData
from app.preferences.pairs import iter_aggregated, task_pairs

Row = dict[str, Any]

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)
CANDIDATE = pa.struct(
    [
        ("id", pa.int64()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("model_version", pa.string()),
    ]
)
RANKING = pa.list_(pa.list_(pa.int64()))
TIMESTAMP = pa.timestamp("us", tz="UTC")


def text_of(messages: list[dict[str, str]]) -> str:
    return messages[0]["content"] if messages else ""


def task_agreement(judgments: list[JudgmentRow]) -> float:
    """Share of pair votes that match each pair's majority outcome (1.0 if unanimous or single)."""
    pairs = task_pairs(0, judgments)
    votes = sum(p.votes for p in pairs)
    return sum(max(p.wins, p.losses, p.ties) for p in pairs) / votes if votes else 1.0


def _joined(prompt: str, completion: str) -> str:
    # RewardTrainer concatenates prompt + completion with no separator
    if prompt[-1:].isspace() or completion[:1].isspace():
        return completion
    return " " + completion


def trl_schema(conversational: bool, margin: bool) -> pa.Schema:
    value = MESSAGES if conversational else pa.string()
    fields = [("prompt", value), ("chosen", value), ("rejected", value)]
    if margin:
        fields.append(("margin", pa.float64()))
    fields += [
        ("task_id", pa.int64()),
        ("chosen_id", pa.int64()),
        ("rejected_id", pa.int64()),
        ("votes", pa.int64()),
        ("agreement", pa.float64()),
    ]
    return pa.schema(fields)


def trl_rows(
    tasks: Iterable[TaskData], conversational: bool, min_agreement: float, margin: bool
) -> Iterator[Row]:
    """Ordered (chosen, rejected) pairs aggregated across labelers."""
    for t in tasks:
        texts = {c.id: c.text for c in t.candidates}
        plain = text_of(t.messages)
        for p in iter_aggregated(t.judgments, min_agreement=min_agreement):
            chosen, rejected = texts[p.winner_id], texts[p.loser_id]
            row: Row
            if conversational:
                row = {
                    "prompt": t.messages,
                    "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                }
            else:
                row = {
                    "prompt": plain,
                    "chosen": _joined(plain, chosen),
                    "rejected": _joined(plain, rejected),
                }
            if margin:
                row["margin"] = p.margin
            row.update(
                task_id=t.task_id,
                chosen_id=p.winner_id,
                rejected_id=p.loser_id,
                votes=p.votes,
                agreement=p.agreement,
            )
            yield row


def _candidates(cands: list[Candidate]) -> list[Row]:
    return [
        {"id": c.id, "text": c.text, "source": c.source, "model_version": c.model_version}
        for c in cands
    ]


RAW_SCHEMA = pa.schema(
    [
        ("judgment_id", pa.int64()),
        ("task_id", pa.int64()),
        ("labeler", pa.string()),
        ("source", pa.string()),
        ("external_id", pa.string()),
        ("prompt", MESSAGES),
        ("is_chat", pa.bool_()),
        ("tags", pa.list_(pa.string())),
        ("candidates", pa.list_(CANDIDATE)),
        ("selection_method", pa.string()),
        ("selection_score", pa.float64()),
        ("ranking", RANKING),
        ("choice", pa.string()),
        ("ratings", pa.map_(pa.string(), pa.int64())),
        ("flags", pa.list_(pa.string())),
        ("rationale", pa.string()),
        ("shown_order", pa.list_(pa.int64())),
        ("time_spent_ms", pa.int64()),
        ("created_at", TIMESTAMP),
    ]
)


def raw_rows(tasks: Iterable[TaskData], min_agreement: float) -> Iterator[Row]:
    """One row per judgment."""
    for t in tasks:
        if min_agreement and task_agreement(t.judgments) + 1e-9 < min_agreement:
            continue
        cands = _candidates(t.candidates)
        for j in t.judgments:
            yield {
                "judgment_id": j.id,
                "task_id": t.task_id,
                "labeler": j.labeler,
                "source": j.source,
                "external_id": j.external_id,
                "prompt": t.messages,
                "is_chat": t.is_chat,
                "tags": t.tags,
                "candidates": cands,
                "selection_method": t.selection_method,
                "selection_score": t.selection_score,
                "ranking": j.ranking,
                "choice": j.choice,
                "ratings": j.ratings,
                "flags": j.flags,
                "rationale": j.rationale,
                "shown_order": j.shown_order,
                "time_spent_ms": j.time_spent_ms,
                "created_at": j.created_at,
            }


RANKINGS_SCHEMA = pa.schema(
    [
        ("task_id", pa.int64()),
        ("prompt", MESSAGES),
        ("is_chat", pa.bool_()),
        ("tags", pa.list_(pa.string())),
        ("candidates", pa.list_(CANDIDATE)),
        ("selection_method", pa.string()),
        ("selection_score", pa.float64()),
        ("rankings", pa.list_(RANKING)),
        ("choices", pa.list_(pa.string())),
        ("labelers", pa.list_(pa.string())),
        ("sources", pa.list_(pa.string())),
        ("judgment_ids", pa.list_(pa.int64())),
        ("agreement", pa.float64()),
    ]
)


def rankings_rows(tasks: Iterable[TaskData], min_agreement: float) -> Iterator[Row]:
    """One row per task; the i-th entries of rankings/choices/labelers/sources belong together."""
    for t in tasks:
        agreement = task_agreement(t.judgments)
        if agreement + 1e-9 < min_agreement:
            continue
        yield {
            "task_id": t.task_id,
            "prompt": t.messages,
            "is_chat": t.is_chat,
            "tags": t.tags,
            "candidates": _candidates(t.candidates),
            "selection_method": t.selection_method,
            "selection_score": t.selection_score,
            "rankings": [j.ranking for j in t.judgments],
            "choices": [j.choice for j in t.judgments],
            "labelers": [j.labeler for j in t.judgments],
            "sources": [j.source for j in t.judgments],
            "judgment_ids": [j.id for j in t.judgments],
            "agreement": agreement,
        }
