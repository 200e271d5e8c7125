"""Per-labeler quality statistics and flags, computed from plain judgment facts (the benchmark
feeds simulated ones through the same code).

- Gold accuracy: share of the labeler's answers on gold tasks that are among the accepted ones.
- Agreement with the majority: over every pair of every task judged by several labelers, does
  the labeler's outcome (a above b, b above a, tied) match the strict majority of the *other*
  labelers? Percent, and per-labeler ordinal Krippendorff alpha (app.preferences.agreement).
- Position bias: on K=2 judgments with a strict winner, the share won by the candidate shown
  first, with an exact two-sided binomial test against 1/2.
- Speed: median time per task; share answered faster than PREFLOOP_QUALITY_FAST_MS.
- Skip rate: skipped / (skipped + submitted) assignments.

A labeler is flagged when, on the judgments made since an admin last cleared their flag, a
statistic with enough evidence passes its threshold (PREFLOOP_QUALITY_* settings): gold
accuracy below the minimum by a one-sided binomial test at level QUALITY_GOLD_ALPHA (over at
least QUALITY_MIN_GOLD_COUNT answers); majority agreement (over at least QUALITY_MIN_OVERLAP
compared pairs) below QUALITY_MIN_AGREEMENT, or below the crowd's median agreement by at least
max(QUALITY_MIN_AGREEMENT_GAP, 2.5 standard errors); position bias at
p < QUALITY_MAX_POSITION_P (at least QUALITY_MIN_POSITION_N K=2 choices); more than
QUALITY_MAX_FAST_SHARE of timed answers under QUALITY_FAST_MS; skip rate above
QUALITY_MAX_SKIP_RATE (at least 10 assignments).

Trust weights (weighting=gold|agreement) are log-odds of a smoothed accuracy, the weight under
which a majority vote of independent labelers is most likely right:
    p = (correct + 1.5) / (n + 2)   (a Beta(1.5, 0.5) prior: 0.75 with no evidence)
    w = clip(ln(p / (1 - p)), 0, ln 19)
with correct/n = gold answers right/total (gold) or agreed/compared (agreement). A labeler at
or below chance gets weight 0.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.preferences.agreement import AgreementAccumulator, Vote, pair_values
from app.quality.gold import is_correct

SERIES_BUCKETS = 12
MAX_WEIGHT = math.log(19)


@dataclass(frozen=True)
class Fact:
    """One judgment as the statistics see it."""

    id: int
    user_id: int | None  # None: imported (counts toward the others' majority only)
    coder: str
    task_id: int
    ranking: list[list[int]]
    choice: str | None
    shown_order: list[int] | None
    time_spent_ms: int | None
    created_at: datetime
    gold: dict[str, Any] | None  # the task's accepted answers when it is a gold task


@dataclass(frozen=True)
class Thresholds:
    min_gold_accuracy: float = 0.6
    min_gold_count: int = 5
    gold_alpha: float = 0.05
    min_agreement: float = 0.5
    min_agreement_gap: float = 0.1
    min_overlap: int = 10
    max_position_p: float = 0.001
    min_position_n: int = 20
    fast_ms: int = 3000
    max_fast_share: float = 0.5
    max_skip_rate: float = 0.5
    min_timed: int = 10
    min_assigned: int = 10

    @classmethod
    def from_settings(cls, s: Any) -> Thresholds:
        return cls(
            min_gold_accuracy=s.quality_min_gold_accuracy,
            min_gold_count=s.quality_min_gold_count,
            gold_alpha=s.quality_gold_alpha,
            min_agreement=s.quality_min_agreement,
            min_agreement_gap=s.quality_min_agreement_gap,
            min_overlap=s.quality_min_overlap,
            max_position_p=s.quality_max_position_p,
            min_position_n=s.quality_min_position_n,
            fast_ms=s.quality_fast_ms,
            max_fast_share=s.quality_max_fast_share,
            max_skip_rate=s.quality_max_skip_rate,
        )


def binomial_p(k: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial test: the probability of an outcome at most as likely as k."""
    if n == 0:
        return 1.0

    def logpmf(i: int) -> float:
        return (
            math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * math.log(p) + (n - i) * math.log1p(-p)
        )  # fmt: skip

    observed = logpmf(k)
    total = sum(math.exp(lp) for i in range(n + 1) if (lp := logpmf(i)) <= observed + 1e-7)
    return min(1.0, total)


def trust_weight(correct: float, n: float) -> float:
    """Log-odds of the smoothed accuracy (module docstring), in [0, ln 19]."""
    p = (correct + 1.5) / (n + 2)
    p = min(max(p, 1e-9), 1 - 1e-9)
    return min(max(math.log(p / (1 - p)), 0.0), MAX_WEIGHT)


@dataclass
class Counts:
    """Running counts over a set of judgments (all time, since the flag was cleared, a bucket)."""

    judgments: int = 0
    gold_n: int = 0
    gold_correct: int = 0
    compared: int = 0
    agreed: int = 0
    first_n: int = 0
    first_won: int = 0
    times: list[int] = field(default_factory=list)
    fast: int = 0

    def add(self, f: Fact, correct: bool | None, cmp: tuple[int, int], first: bool | None,
            fast_ms: int) -> None:  # fmt: skip
        self.judgments += 1
        if correct is not None:
            self.gold_n += 1
            self.gold_correct += correct
        self.compared += cmp[0]
        self.agreed += cmp[1]
        if first is not None:
            self.first_n += 1
            self.first_won += first
        if f.time_spent_ms is not None:
            self.times.append(f.time_spent_ms)
            self.fast += f.time_spent_ms < fast_ms

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_n if self.gold_n else None

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    @property
    def first_share(self) -> float | None:
        return self.first_won / self.first_n if self.first_n else None

    @property
    def position_p(self) -> float | None:
        return binomial_p(self.first_won, self.first_n) if self.first_n else None

    @property
    def fast_share(self) -> float | None:
        return self.fast / len(self.times) if self.times else None

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.times) if self.times else None


@dataclass
class LabelerStats:
    user_id: int
    name: str
    all: Counts = field(default_factory=Counts)
    recent: Counts = field(default_factory=Counts)  # since the flag was last cleared
    alpha: float | None = None
    skipped: int = 0
    submitted: int = 0
    flags: list[str] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)
    paused: bool = False
    excluded: int = 0  # judgments currently excluded

    @property
    def skip_rate(self) -> float | None:
        total = self.skipped + self.submitted
        return self.skipped / total if total else None

    def weight(self, weighting: str) -> float:
        if weighting == "gold":
            return trust_weight(self.all.gold_correct, self.all.gold_n)
        if weighting == "agreement":
            return trust_weight(self.all.agreed, self.all.compared)
        return 1.0

    def as_dict(self) -> dict[str, Any]:
        a = self.all
        return {
            "user_id": self.user_id,
            "name": self.name,
            "judgments": a.judgments,
            "gold_accuracy": a.gold_accuracy,
            "gold_count": a.gold_n,
            "agreement": a.agreement,
            "agreement_compared": a.compared,
            "alpha": self.alpha,
            "first_shown_share": a.first_share,
            "first_shown_n": a.first_n,
            "position_p": a.position_p,
            "median_ms": a.median_ms,
            "fast_share": a.fast_share,
            "skip_rate": self.skip_rate,
            "skipped": self.skipped,
            "flags": self.flags,
            "paused": self.paused,
            "excluded_judgments": self.excluded,
            "weights": {w: round(self.weight(w), 4) for w in ("gold", "agreement")},
            "series": self.series,
        }


def _outcome_checks(facts: list[Fact]) -> dict[int, tuple[int, int]]:
    """Per judgment of one task: (pairs compared with the others' strict majority, agreed)."""
    values = [pair_values(f.ranking, f.choice) for f in facts]
    out = {f.id: (0, 0) for f in facts}
    for i, f in enumerate(facts):
        compared = agreed = 0
        for unit, value in values[i].items():
            counts = [0, 0, 0]
            for j, other in enumerate(values):
                if j != i and unit in other:
                    counts[other[unit]] += 1
            top = max(counts)
            if top == 0 or counts.count(top) > 1:
                continue
            compared += 1
            agreed += counts.index(top) == value
        out[f.id] = (compared, agreed)
    return out


def _first_won(f: Fact) -> bool | None:
    order = f.shown_order or []
    groups = [g for g in f.ranking if g]
    if len(order) != 2 or len(groups) != 2 or f.choice == "both_bad":
        return None
    return groups[0][0] == order[0]


def compute(
    facts: Iterable[Fact],
    names: dict[int, str],
    th: Thresholds,
    skips: dict[int, tuple[int, int]] | None = None,
    cleared: dict[int, datetime | None] | None = None,
) -> dict[int, LabelerStats]:
    """Statistics and flags for every labeler in `names` (facts ordered by task id)."""
    skips, cleared = skips or {}, cleared or {}
    out = {uid: LabelerStats(uid, name) for uid, name in names.items()}
    per_user: dict[int, list[tuple[Fact, bool | None, tuple[int, int], bool | None]]] = defaultdict(
        list
    )
    acc = AgreementAccumulator()
    by_task: dict[int, list[Fact]] = defaultdict(list)
    for f in facts:
        by_task[f.task_id].append(f)
    for group in by_task.values():
        checks = _outcome_checks(group) if len(group) > 1 else {f.id: (0, 0) for f in group}
        acc.add_task(Vote(g.coder, g.ranking, g.choice) for g in group)
        for f in group:
            if f.user_id in out:
                correct = is_correct(f.gold, f.ranking)
                per_user[f.user_id].append((f, correct, checks[f.id], _first_won(f)))
    alphas = {lab.coder: lab.alpha for lab in acc.report().labelers}
    for uid, st in out.items():
        rows = sorted(per_user.get(uid, []), key=lambda r: r[0].created_at)
        since = cleared.get(uid)
        for f, correct, cmp, first in rows:
            st.all.add(f, correct, cmp, first, th.fast_ms)
            if since is None or f.created_at > since:
                st.recent.add(f, correct, cmp, first, th.fast_ms)
        if rows:
            st.alpha = alphas.get(rows[0][0].coder)
        st.skipped, st.submitted = skips.get(uid, (0, 0))
        st.series = _series(rows, th)
    crowd = crowd_agreement(out.values(), th)
    for st in out.values():
        st.flags = flags(st.recent, st.skipped, st.submitted, th, crowd)
    return out


def crowd_agreement(stats: Iterable[LabelerStats], th: Thresholds) -> float | None:
    """The median majority agreement of labelers with enough compared pairs."""
    values = [
        float(s.recent.agreement)
        for s in stats
        if s.recent.compared >= th.min_overlap and s.recent.agreement is not None
    ]
    return statistics.median(values) if values else None


def agreement_low(c: Counts, th: Thresholds, crowd: float | None) -> bool:
    """Below the absolute minimum, or far below the crowd: at least max(min_agreement_gap,
    2.5 standard errors) under the crowd's median (adapts to how hard the tasks are)."""
    if c.compared < th.min_overlap or c.agreement is None:
        return False
    if c.agreement < th.min_agreement:
        return True
    if crowd is None:
        return False
    se = math.sqrt(max(crowd * (1 - crowd), 1e-6) / c.compared)
    return crowd - c.agreement >= max(th.min_agreement_gap, 2.5 * se)


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if p <= 0:
        return 1.0
    if p >= 1:
        return 1.0 if k >= n else 0.0
    return min(1.0, sum(
        math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                 + i * math.log(p) + (n - i) * math.log1p(-p))
        for i in range(0, k + 1)
    ))  # fmt: skip


def gold_below(correct: int, n: int, th: Thresholds) -> bool:
    """Gold accuracy is below the threshold with evidence: a one-sided binomial test of
    "accuracy >= min_gold_accuracy" rejects at level gold_alpha (a few unlucky answers of a
    good labeler do not flag them)."""
    if n == 0 or correct / n >= th.min_gold_accuracy:
        return False
    return binomial_cdf(correct, n, th.min_gold_accuracy) < th.gold_alpha


def flags(
    c: Counts, skipped: int, submitted: int, th: Thresholds, crowd: float | None = None
) -> list[str]:
    out = []
    if c.gold_n >= th.min_gold_count and gold_below(c.gold_correct, c.gold_n, th):
        out.append("gold")
    if agreement_low(c, th, crowd):
        out.append("agreement")
    if c.first_n >= th.min_position_n and (c.position_p or 1) < th.max_position_p:
        out.append("position")
    if len(c.times) >= th.min_timed and (c.fast_share or 0) > th.max_fast_share:
        out.append("fast")
    total = skipped + submitted
    if total >= th.min_assigned and skipped / total > th.max_skip_rate:
        out.append("skips")
    return out


def _series(rows: list[Any], th: Thresholds) -> dict[str, list[float | None]]:
    """The labeler's judgments in time order cut into up to SERIES_BUCKETS equal buckets."""
    keys = ("gold_accuracy", "agreement", "first_share", "fast_share")
    if not rows:
        return {k: [] for k in keys}
    n = min(SERIES_BUCKETS, len(rows))
    buckets = [Counts() for _ in range(n)]
    for i, (f, correct, cmp, first) in enumerate(rows):
        buckets[i * n // len(rows)].add(f, correct, cmp, first, th.fast_ms)
    return {k: [getattr(b, k) for b in buckets] for k in keys}


def weighted_majority(
    votes: Iterable[tuple[list[list[int]], str | None, float]],
) -> dict[tuple[int, int], tuple[float, float, float]]:
    """Weighted votes per unordered pair (lo, hi): (weight for lo above hi, for hi above lo,
    for tied)."""
    out: dict[tuple[int, int], list[float]] = {}
    for ranking, choice, w in votes:
        for unit, value in pair_values(ranking, choice).items():
            out.setdefault(unit, [0.0, 0.0, 0.0])[value] += w
    return {k: (v[0], v[2], v[1]) for k, v in out.items()}
