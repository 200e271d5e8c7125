"""Training data from the database: reward-model pairs from judgments, PPO prompts.

Splits are by prompt and deterministic: a prompt's side depends only on its content hash (stable
across databases and re-runs), so no prompt ever lands on both sides and adding judgments later
never moves an old prompt to the other side.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import ComparisonTask, Completion, Judgment, Prompt, TaskCandidate, TaskStatus
from app.preferences.pairs import aggregate

Messages = list[dict[str, str]]


def bucket(key: str, salt: str) -> float:
    """A stable pseudo-random number in [0, 1) for `key`."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_keys(keys: list[str], fraction: float, salt: str) -> tuple[set[str], set[str]]:
    """(train, held out): keys whose bucket is below `fraction` are held out.

    With two or more keys both sides get at least one (the extreme bucket moves over), so a tiny
    dataset still has something to evaluate on.
    """
    unique = sorted(set(keys), key=lambda k: (bucket(k, salt), k))
    held = {k for k in unique if bucket(k, salt) < fraction}
    train = set(unique) - held
    if len(unique) >= 2 and fraction > 0:
        if not held:
            held.add(unique[0])
            train.discard(unique[0])
        if not train:
            train.add(unique[-1])
            held.discard(unique[-1])
    return train, held


@dataclass
class RewardData:
    """Conversational preference rows for TRL plus what went into them."""

    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    judgment_ids: list[int]
    stats: dict[str, Any] = field(default_factory=dict)
    eval_groups: list[str] = field(default_factory=list)  # prompt hash of each eval row


def _row(messages: Messages, chosen: str, rejected: str) -> dict[str, Any]:
    return {
        "prompt": messages,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def reward_rows(
    session: Session,
    min_agreement: float,
    eval_fraction: float = 0.2,
    max_judgment_id: int | None = None,
    salt: str = "rm",
    weighting: str = "none",
) -> RewardData:
    """Pairs from every judgment (up to `max_judgment_id`), majority-aggregated per task.
    Gold tasks and excluded judgments never enter (app.quality).

    A K-wise ranking gives every ordered pair across its tie groups; ties and both-bad judgments
    give no pair but vote (as "tied") and are counted. Pairs whose majority share is below
    `min_agreement`, or whose majority is a tie, are left out.

    With `weighting` "agreement" or "gold" the vote is weighted by labeler trust and every row
    carries a loss `weight` (app.quality.weighting documents the formulas).
    """
    if weighting != "none":
        return _weighted_reward_rows(
            session, min_agreement, eval_fraction, max_judgment_id, salt, weighting
        )
    judgments = _training_judgments(session, max_judgment_id)
    pairs = aggregate(judgments, min_agreement=0.0, include_ties=True)
    return _rows_for(session, judgments, pairs, min_agreement, eval_fraction, salt)


def _training_judgments(session: Session, max_judgment_id: int | None) -> list[Any]:
    gold = select(ComparisonTask.id).where(ComparisonTask.status == TaskStatus.gold)
    q = (
        select(Judgment.id, Judgment.task_id, Judgment.ranking, Judgment.choice, Judgment.user_id)
        .where(Judgment.excluded.is_(False), Judgment.task_id.not_in(gold))
        .order_by(Judgment.task_id, Judgment.id)
    )
    if max_judgment_id is not None:
        q = q.where(Judgment.id <= max_judgment_id)
    return list(session.execute(q).all())


def _weighted_reward_rows(
    session: Session,
    min_agreement: float,
    eval_fraction: float,
    max_judgment_id: int | None,
    salt: str,
    weighting: str,
) -> RewardData:
    from app.models import User
    from app.quality.weighting import labeler_weights, weight_summary, weighted_pairs

    weights = labeler_weights(session, weighting)
    judgments = _training_judgments(session, max_judgment_id)
    pairs, dropped = weighted_pairs(judgments, weights, min_agreement)
    data = _rows_for(session, judgments, pairs, min_agreement, eval_fraction, salt, dropped)
    names = session.execute(select(User.id, User.name)).all()
    voters = {j.user_id for j in judgments if j.user_id is not None}
    data.stats["weighting"] = weighting
    data.stats["labeler_weights"] = weight_summary(
        {u: w for u, w in weights.items() if u in voters}, names
    )
    return data


def _rows_for(
    session: Session,
    judgments: list[Any],
    pairs: list[Any],
    min_agreement: float,
    eval_fraction: float,
    salt: str,
    dropped: dict[str, int] | None = None,
) -> RewardData:
    """Training rows from aggregated pairs (AggregatedPair, or WeightedPair with a weight)."""
    if dropped is None:
        kept = [p for p in pairs if not p.is_tie and p.agreement + 1e-9 >= min_agreement]
        low = sum(1 for p in pairs if p.agreement + 1e-9 < min_agreement)
        tied = sum(1 for p in pairs if p.is_tie and p.agreement + 1e-9 >= min_agreement)
    else:
        kept, low, tied = pairs, dropped["low_agreement"], dropped["tied"]

    task_ids = sorted({p.task_id for p in kept})
    completion_ids = sorted({c for p in kept for c in (p.winner_id, p.loser_id)})
    prompts: dict[int, tuple[str, Messages]] = {}
    sizes: dict[int, int] = {}  # task -> K (candidates)
    for i in range(0, len(task_ids), 500):
        rows = session.execute(
            select(ComparisonTask.id, Prompt.content_hash, Prompt.messages)
            .join(Prompt, Prompt.id == ComparisonTask.prompt_id)
            .where(ComparisonTask.id.in_(task_ids[i : i + 500]))
        )
        prompts.update({tid: (h, m) for tid, h, m in rows})
        counts = session.execute(
            select(TaskCandidate.task_id, func.count())
            .where(TaskCandidate.task_id.in_(task_ids[i : i + 500]))
            .group_by(TaskCandidate.task_id)
        )
        sizes.update({tid: int(n) for tid, n in counts})
    texts: dict[int, str] = {}
    for i in range(0, len(completion_ids), 500):
        rows = session.execute(
            select(Completion.id, Completion.text).where(
                Completion.id.in_(completion_ids[i : i + 500])
            )
        )
        texts.update({cid: t for cid, t in rows})

    train_keys, eval_keys = split_keys([prompts[t][0] for t in task_ids], eval_fraction, salt)
    train: list[dict[str, Any]] = []
    evals: list[dict[str, Any]] = []
    groups: list[str] = []
    for p in kept:
        key, messages = prompts[p.task_id]
        row = _row(messages, texts[p.winner_id], texts[p.loser_id])
        if hasattr(p, "weight") and key not in eval_keys:
            row["weight"] = p.weight  # eval stays unweighted: accuracy against the labels
        if key in eval_keys:
            evals.append(row)
            groups.append(key)
        else:
            train.append(row)
    ids = sorted(j.id for j in judgments)
    stats = {
        "judgments": len(judgments),
        "both_bad_judgments": sum(1 for j in judgments if j.choice == "both_bad"),
        "pairs_total": len(kept) + low + tied if dropped is not None else len(pairs),
        "pairs_kept": len(kept),
        "pairs_train": len(train),
        "pairs_eval": len(evals),
        "pairs_tied": tied,
        "pairs_low_agreement": low,
        "pairs_kwise": sum(1 for p in kept if sizes.get(p.task_id, 2) > 2),
        "kwise_tasks": sum(1 for t in task_ids if sizes.get(t, 2) > 2),
        "prompts_train": len(train_keys),
        "prompts_eval": len(eval_keys),
        "min_agreement": min_agreement,
        "eval_fraction": eval_fraction,
        "max_judgment_id": ids[-1] if ids else None,
    }
    return RewardData(train, evals, ids, stats, groups)


def ppo_prompts(
    session: Session,
    heldout_fraction: float = 0.2,
    max_train: int = 2000,
    max_heldout: int = 64,
    salt: str = "ppo",
) -> tuple[list[Messages], list[Messages]]:
    """(train, held-out) prompt conversations from the prompts table, split by content hash."""
    rows = session.execute(select(Prompt.content_hash, Prompt.messages).order_by(Prompt.id)).all()
    by_key = {h: m for h, m in rows if m}
    train_keys, held_keys = split_keys(list(by_key), heldout_fraction, salt)

    def pick(keys: set[str], limit: int) -> list[Messages]:
        ordered = sorted(keys, key=lambda k: (bucket(k, salt + ":order"), k))
        return [by_key[k] for k in ordered[:limit]]

    return pick(train_keys, max_train), pick(held_keys, max_heldout)
