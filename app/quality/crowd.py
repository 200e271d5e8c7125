"""A simulated labeling crowd over pairs with a known truth, for the labeler-quality benchmark
and its seeded test: who gets flagged, and how accurate are the training labels (majority vote
plain, trust-weighted, or after excluding flagged labelers) against the truth.

Labelers: good ones agree with the truth with probability `good_accuracy`; random ones pick at
random; always-A ones pick whatever is shown first; fast-random ones pick at random in about a
second. Every pair is judged by `per_pair` distinct labelers, each shown the pair in a random
order; about 1 in `gold_every` of each labeler's tasks is a gold pair (never the same twice).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from app.quality.stats import Fact, LabelerStats, Thresholds, compute

KINDS = ("good", "random", "always_a", "fast_random")
DEFAULT_CROWD = {"good": 14, "random": 3, "always_a": 2, "fast_random": 1}


@dataclass(frozen=True)
class Pair:
    id: int
    better: int  # candidate ids
    worse: int


@dataclass
class Crowd:
    kinds: dict[int, str]  # labeler id -> kind
    facts: list[Fact]
    gold_ids: set[int]
    votes: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # pair -> (uid, winner)


def _time_ms(kind: str, rng: random.Random) -> int:
    if kind == "fast_random":
        return int(rng.uniform(300, 1500))
    median = {"good": 14_000, "random": 9_000, "always_a": 6_000}[kind]
    return int(math.exp(rng.gauss(math.log(median), 0.5)))


def _answer(kind: str, p: Pair, shown: list[int], rng: random.Random, good_accuracy: float) -> int:
    if kind == "good":
        return p.better if rng.random() < good_accuracy else p.worse
    if kind == "always_a":
        return shown[0]
    return shown[rng.randrange(2)]


def simulate(
    pairs: list[Pair],
    seed: int = 0,
    crowd: dict[str, int] | None = None,
    per_pair: int = 3,
    gold_every: int = 20,
    good_accuracy: float = 0.85,
    gold_pool: int | None = None,
) -> Crowd:
    """Judgments of a simulated crowd; the first `gold_pool` pairs (after a seeded shuffle) are
    gold, the rest are judged by `per_pair` labelers each."""
    rng = random.Random(seed)
    crowd = crowd or DEFAULT_CROWD
    kinds: dict[int, str] = {}
    for kind in KINDS:
        for _ in range(crowd.get(kind, 0)):
            kinds[len(kinds) + 1] = kind
    order = pairs[:]
    rng.shuffle(order)
    n_gold = gold_pool if gold_pool is not None else max(10, len(order) // 25)
    gold, work = order[:n_gold], order[n_gold:]
    gold_ids = {p.id for p in gold}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    queues: dict[int, list[Pair]] = {u: [] for u in kinds}
    for p in work:
        for uid in rng.sample(sorted(kinds), per_pair):
            queues[uid].append(p)
    facts: list[Fact] = []
    votes: dict[int, list[tuple[int, int]]] = {}
    jid = 0
    for uid, queue in queues.items():
        kind = kinds[uid]
        golds = rng.sample(gold, min(len(gold), len(queue) // (gold_every - 1)))
        stream = queue[:]
        for g in golds:  # 1 in gold_every, at random places
            stream.insert(rng.randrange(len(stream) + 1), g)
        at = start
        for p in stream:
            shown = [p.better, p.worse]
            rng.shuffle(shown)
            winner = _answer(kind, p, shown, rng, good_accuracy)
            loser = p.worse if winner == p.better else p.better
            spent = _time_ms(kind, rng)
            at += timedelta(milliseconds=spent + 2000)
            jid += 1
            is_gold = p.id in gold_ids
            gold_answer = {"accept": [[[p.better], [p.worse]]]} if is_gold else None
            facts.append(Fact(jid, uid, f"u{uid}", p.id, [[winner], [loser]], None, shown,
                              spent, at, gold_answer))  # fmt: skip
            if not is_gold:
                votes.setdefault(p.id, []).append((uid, winner))
    facts.sort(key=lambda f: (f.task_id, f.id))
    return Crowd(kinds, facts, gold_ids, votes)


def flagged(c: Crowd, th: Thresholds | None = None) -> dict[int, LabelerStats]:
    names = {uid: f"{kind}-{uid}" for uid, kind in c.kinds.items()}
    return compute(c.facts, names, th or Thresholds())


def label_accuracy(
    c: Crowd, pairs: list[Pair], weights: dict[int, float] | None = None,
    drop: set[int] | None = None,
) -> float:  # fmt: skip
    """Share of non-gold pairs whose (weighted) majority label is the truth; a level vote or
    no vote left counts half (a coin flip)."""
    truth = {p.id: p.better for p in pairs}
    score = 0.0
    for pid, vs in c.votes.items():
        tally: dict[int, float] = {}
        for uid, winner in vs:
            if drop and uid in drop:
                continue
            tally[winner] = tally.get(winner, 0.0) + (weights.get(uid, 1.0) if weights else 1.0)
        ranked = sorted(tally.values(), reverse=True)
        if not ranked or (len(ranked) > 1 and ranked[0] == ranked[1]) or ranked[0] <= 0:
            score += 0.5
        elif max(tally, key=lambda k: tally[k]) == truth[pid]:
            score += 1
    return score / len(c.votes) if c.votes else 0.0


def relabel(
    c: Crowd, pairs: list[Pair], drop: set[int], seed: int, good_accuracy: float = 0.85
) -> Crowd:
    """What "exclude" leads to in prefloop: the excluded labelers' judgments stop counting, their
    tasks reopen, and other (not excluded) labelers judge them instead."""
    rng = random.Random(seed + 10_000)
    by_id = {p.id: p for p in pairs}
    keep = sorted(u for u in c.kinds if u not in drop)
    votes: dict[int, list[tuple[int, int]]] = {}
    for pid, vs in c.votes.items():
        kept = [(u, w) for u, w in vs if u not in drop]
        used = {u for u, _ in vs}
        free = [u for u in keep if u not in used]
        for uid in rng.sample(free, min(len(free), len(vs) - len(kept))):
            shown = [by_id[pid].better, by_id[pid].worse]
            rng.shuffle(shown)
            kept.append((uid, _answer(c.kinds[uid], by_id[pid], shown, rng, good_accuracy)))
        votes[pid] = kept
    return Crowd(c.kinds, c.facts, c.gold_ids, votes)


def evaluate(pairs: list[Pair], seed: int, th: Thresholds | None = None) -> dict[str, float]:
    """One seeded crowd: flags and label accuracy (none, gold- and agreement-weighted,
    exclusion), plus an all-good crowd over the same assignments as the ceiling."""
    c = simulate(pairs, seed)
    stats = flagged(c, th)
    bad = {u for u, k in c.kinds.items() if k != "good"}
    flags = {u for u, s in stats.items() if s.flags}
    ceiling = simulate(pairs, seed, crowd={"good": sum(DEFAULT_CROWD.values())})
    return {
        "bad_flagged": len(flags & bad),
        "bad": len(bad),
        "false_flags": len(flags - bad),
        "acc_all_good": label_accuracy(ceiling, pairs),
        "acc_none": label_accuracy(c, pairs),
        "acc_gold": label_accuracy(c, pairs, {u: s.weight("gold") for u, s in stats.items()}),
        "acc_agreement": label_accuracy(
            c, pairs, {u: s.weight("agreement") for u, s in stats.items()}
        ),
        "acc_exclusion": label_accuracy(c, pairs, drop=flags),
        "acc_exclusion_relabeled": label_accuracy(relabel(c, pairs, flags, seed), pairs),
        "judgments": len(c.facts),
        "gold_answers": sum(f.gold is not None for f in c.facts),
    }


def synthetic_pairs(n: int) -> list[Pair]:
    """n pairs with candidate ids 2i (better) and 2i+1."""
    return [Pair(i, 2 * i, 2 * i + 1) for i in range(n)]
