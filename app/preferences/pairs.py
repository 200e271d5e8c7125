"""Turn K-wise rankings (tie groups, best first) into ordered pairs and aggregate them per task.

A ranking is a list of groups of completion ids, best group first; ids in one group are tied.
Every ordered pair across groups is a preference (winner, loser); ids in one group give none, so
a both-bad judgment (ranking [[a, b]], choice "both_bad") gives no pairs. Aggregation is a
majority vote per (task, unordered pair) over the outcomes "a above b", "b above a" and "tied"
(ties and both-bad count as tied votes: they are answers, not abstentions).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations, groupby
from typing import Any, Protocol

Ranking = Sequence[Sequence[int]]


class JudgmentLike(Protocol):
    """Anything with a task id, a ranking and a choice (ORM rows, Row tuples, dataclasses)."""

    @property
    def task_id(self) -> int: ...

    @property
    def ranking(self) -> Any: ...

    @property
    def choice(self) -> str | None: ...


@dataclass(frozen=True)
class AggregatedPair:
    """Votes of every judgment of one task on one pair; `winner_id` is the majority's pick.

    When the majority is "tied" (or wins and losses are level) `is_tie` is true and
    winner/loser are just the smaller/larger id.
    """

    task_id: int
    winner_id: int
    loser_id: int
    wins: int
    losses: int
    ties: int
    both_bad: int

    @property
    def votes(self) -> int:
        return self.wins + self.losses + self.ties

    @property
    def is_tie(self) -> bool:
        return not (self.wins > self.losses and self.wins > self.ties)

    @property
    def agreement(self) -> float:
        """Fraction of judgments voting for the majority outcome (1.0 when unanimous)."""
        return max(self.wins, self.losses, self.ties) / self.votes if self.votes else 0.0

    @property
    def margin(self) -> float:
        """Net preference strength in [0, 1]: (wins - losses) / votes."""
        return (self.wins - self.losses) / self.votes if self.votes else 0.0


def ordered_pairs(ranking: Ranking, choice: str | None = None) -> list[tuple[int, int]]:
    """Every (winner_id, loser_id) across tie groups, best first; none within a group."""
    if choice == "both_bad":
        return []
    groups = [list(g) for g in ranking if g]
    return [
        (w, loser)
        for i, upper in enumerate(groups)
        for lower in groups[i + 1 :]
        for w in upper
        for loser in lower
    ]


def tied_pairs(ranking: Ranking) -> list[tuple[int, int]]:
    """Every unordered pair (smaller id first) sharing a tie group."""
    return [(min(a, b), max(a, b)) for g in ranking for a, b in combinations(g, 2)]


def task_pairs(task_id: int, judgments: Iterable[JudgmentLike]) -> list[AggregatedPair]:
    """Every pair of one task with its votes (tied majorities included, no filtering)."""
    # counts[(lo, hi)] = [lo above hi, hi above lo, tied, both_bad]
    counts: dict[tuple[int, int], list[int]] = {}
    for j in judgments:
        ranking = j.ranking or []
        for w, loser in ordered_pairs(ranking):
            key = (min(w, loser), max(w, loser))
            counts.setdefault(key, [0, 0, 0, 0])[0 if w < loser else 1] += 1
        for key in tied_pairs(ranking):
            c = counts.setdefault(key, [0, 0, 0, 0])
            c[2] += 1
            c[3] += j.choice == "both_bad"
    out = []
    for (lo, hi), (lo_wins, hi_wins, ties, both_bad) in sorted(counts.items()):
        if hi_wins > lo_wins:
            out.append(AggregatedPair(task_id, hi, lo, hi_wins, lo_wins, ties, both_bad))
        else:
            out.append(AggregatedPair(task_id, lo, hi, lo_wins, hi_wins, ties, both_bad))
    return out


def iter_aggregated(
    judgments: Iterable[JudgmentLike], min_agreement: float = 0.0, include_ties: bool = False
) -> Iterator[AggregatedPair]:
    """Stream aggregate() over judgments already ordered by task_id: one task in memory at once."""
    for task_id, group in groupby(judgments, key=lambda j: j.task_id):
        for pair in task_pairs(task_id, group):
            if pair.agreement + 1e-9 < min_agreement:
                continue
            if pair.is_tie and not include_ties:
                continue
            yield pair


def aggregate(
    judgments: Iterable[JudgmentLike], min_agreement: float = 0.0, include_ties: bool = False
) -> list[AggregatedPair]:
    """Majority vote per (task, unordered pair) with agreement and vote counts.

    Pairs whose majority agreement is below `min_agreement` are dropped; tied majorities are
    dropped unless `include_ties`. Input order does not matter.
    """
    by_task: dict[int, list[JudgmentLike]] = {}
    for j in judgments:
        by_task.setdefault(j.task_id, []).append(j)
    ordered = (j for tid in sorted(by_task) for j in by_task[tid])
    return list(iter_aggregated(ordered, min_agreement, include_ties))
