"""Trust-weighted training data: weighted majority votes and per-pair loss weights.

With weighting "gold" or "agreement", every labeler u has a trust weight w_u (log-odds of a
smoothed accuracy, app.quality.stats.trust_weight); an imported judgment (no labeler) gets the
mean labeler weight w̄. For each (task, unordered pair), the weighted votes W(a>b), W(b>a) and
W(tie) decide the label (the largest; a tie or a level vote gives no pair), and the pair enters
the loss with weight

    weight = (W(winner) - W(loser)) / (n_votes * w̄)

so a unanimous pair of average-trust labelers weighs 1, a split or low-trust pair less.
"Agreement" of a pair is its weighted majority share W(winner) / W(all). Weighting "none" is
the plain majority vote with every pair at weight 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from app.preferences.agreement import HI, LO, TIE, pair_values

WEIGHTINGS = ("none", "agreement", "gold")


@dataclass(frozen=True)
class WeightedPair:
    task_id: int
    winner_id: int
    loser_id: int
    votes: int
    agreement: float  # weighted majority share
    weight: float  # loss weight


def labeler_weights(session: Any, weighting: str) -> dict[int, float]:
    """Trust weight of every labeler under `weighting` (empty for "none")."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}")
    if weighting == "none":
        return {}
    from app.quality.service import labeler_stats

    return {uid: st.weight(weighting) for uid, st in labeler_stats(session).items()}


def weighted_pairs(
    judgments: Iterable[Any], weights: dict[int, float], min_agreement: float = 0.0
) -> tuple[list[WeightedPair], dict[str, int]]:
    """Weighted-majority pairs from judgments (rows with task_id, ranking, choice, user_id),
    ordered by task. Returns the kept pairs and counts of dropped ones."""
    mean = sum(weights.values()) / len(weights) if weights else 1.0
    mean = mean or 1.0
    kept: list[WeightedPair] = []
    dropped = {"tied": 0, "low_agreement": 0}
    for task_id, group in groupby(judgments, key=lambda j: j.task_id):
        units: dict[tuple[int, int], list[float]] = {}
        counts: dict[tuple[int, int], int] = {}
        for j in group:
            w = weights.get(j.user_id, mean) if j.user_id is not None else mean
            for unit, value in pair_values(j.ranking or [], j.choice).items():
                units.setdefault(unit, [0.0, 0.0, 0.0])[value] += w
                counts[unit] = counts.get(unit, 0) + 1
        for (lo, hi), v in sorted(units.items()):
            total = sum(v)
            top = max(v)
            if total <= 0 or v[TIE] == top or v[LO] == v[HI]:
                dropped["tied"] += 1
                continue
            share = top / total
            if share + 1e-9 < min_agreement:
                dropped["low_agreement"] += 1
                continue
            win, lose = (lo, hi) if v[LO] > v[HI] else (hi, lo)
            margin = abs(v[LO] - v[HI])
            kept.append(
                WeightedPair(
                    task_id, win, lose, counts[(lo, hi)], share, margin / (counts[(lo, hi)] * mean)
                )  # fmt: skip
            )
    return kept, dropped


def weight_summary(weights: dict[int, float], names: Sequence[tuple[int, str]]) -> dict[str, float]:
    """{labeler name: weight} for a run's record."""
    by_id = dict(names)
    return {by_id.get(uid, str(uid)): round(w, 4) for uid, w in sorted(weights.items())}
