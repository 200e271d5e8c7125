"""Arena statistics: a Bradley-Terry fit over battles with bootstrap intervals, win rates per pair
with Wilson intervals, the promotion gate's verdict and which pair to battle next.

An outcome is the score of model A: 1 (A won), 0 (B won) or 0.5 (tie or both bad: half a win
to each). Pure numpy; no database.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Outcome = tuple[str, str, float]  # (model_a, model_b, score of a)
Z95 = 1.959963984540054
ELO = 400.0 / math.log(10.0)  # ratings on the familiar Elo scale: 400 points = 10:1 odds
BASE = 1000.0


def fit_bt(
    outcomes: Sequence[Outcome], models: Sequence[str] | None = None, ridge: float = 1e-3
) -> dict[str, float]:
    """Bradley-Terry strengths (log-odds scale, mean 0) by Newton's method on the log-likelihood
    with a small ridge (keeps a model that won or lost everything finite)."""
    names = list(models) if models is not None else sorted({m for o in outcomes for m in o[:2]})
    if not names:
        return {}
    index = {m: i for i, m in enumerate(names)}
    a = np.array([index[o[0]] for o in outcomes], dtype=int)
    b = np.array([index[o[1]] for o in outcomes], dtype=int)
    s = np.array([o[2] for o in outcomes], dtype=float)
    return {m: float(v) for m, v in zip(names, _newton(a, b, s, len(names), ridge), strict=True)}


def _newton(a: np.ndarray, b: np.ndarray, s: np.ndarray, n: int, ridge: float) -> np.ndarray:
    theta = np.zeros(n)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(theta[b] - theta[a]))  # P(a beats b)
        r = s - p
        grad = np.bincount(a, r, n) - np.bincount(b, r, n) - ridge * theta
        w = p * (1.0 - p)
        hess = np.zeros((n, n))
        np.add.at(hess, (a, a), w)
        np.add.at(hess, (b, b), w)
        np.add.at(hess, (a, b), -w)
        np.add.at(hess, (b, a), -w)
        hess += ridge * np.eye(n)
        step = np.linalg.solve(hess, grad)
        theta += step
        if np.max(np.abs(step)) < 1e-9:
            break
    return theta - theta.mean()


@dataclass(frozen=True)
class Rating:
    model: str
    rating: float  # Elo scale, mean BASE
    lower: float
    upper: float
    battles: int


def leaderboard(
    outcomes: Sequence[Outcome], rounds: int = 200, seed: int = 0, models: Sequence[str] = ()
) -> list[Rating]:
    """Ratings with bootstrap 95% intervals (battles resampled with replacement), best first."""
    names = sorted({m for o in outcomes for m in o[:2]} | set(models))
    if not names:
        return []
    index = {m: i for i, m in enumerate(names)}
    a = np.array([index[o[0]] for o in outcomes], dtype=int)
    b = np.array([index[o[1]] for o in outcomes], dtype=int)
    s = np.array([o[2] for o in outcomes], dtype=float)
    counts = np.bincount(a, minlength=len(names)) + np.bincount(b, minlength=len(names))
    point = _newton(a, b, s, len(names), 1e-3)
    rng = np.random.default_rng(seed)
    boots = np.empty((rounds, len(names)))
    for r in range(rounds):
        pick = rng.integers(0, len(s), len(s)) if len(s) else np.zeros(0, dtype=int)
        boots[r] = _newton(a[pick], b[pick], s[pick], len(names), 1e-3)
    lo, hi = np.percentile(boots, [2.5, 97.5], axis=0) if len(s) else (point, point)
    out = [
        Rating(
            m,
            float(BASE + ELO * point[i]),
            float(BASE + ELO * lo[i]),
            float(BASE + ELO * hi[i]),
            int(counts[i]),
        )
        for i, m in enumerate(names)
    ]
    return sorted(out, key=lambda x: -x.rating)


def wilson(score: float, n: int) -> tuple[float, float]:
    """95% Wilson interval of a win rate (score = wins + ties / 2 out of n battles)."""
    if n <= 0:
        return 0.0, 1.0
    p = score / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class PairRate:
    model: str
    opponent: str
    battles: int
    score: float  # wins + ties / 2 of `model`
    win_rate: float
    lower: float
    upper: float


def win_rate(outcomes: Sequence[Outcome], model: str, opponent: str) -> PairRate:
    """How often `model` beat `opponent` (ties count half), with its 95% interval."""
    n, score = 0, 0.0
    for a, b, s in outcomes:
        if (a, b) == (model, opponent):
            n, score = n + 1, score + s
        elif (a, b) == (opponent, model):
            n, score = n + 1, score + 1.0 - s
    lo, hi = wilson(score, n)
    return PairRate(model, opponent, n, score, score / n if n else math.nan, lo, hi)


def pair_rates(outcomes: Sequence[Outcome]) -> list[PairRate]:
    """Win rate of the first-named model for every pair that battled (names sorted)."""
    pairs = sorted({tuple(sorted(o[:2])) for o in outcomes if o[0] != o[1]})
    return [win_rate(outcomes, a, b) for a, b in pairs]


def gate(rate: PairRate, min_battles: int, max_battles: int) -> str:
    """The promotion verdict for a candidate's win rate against the active version: promote when
    the interval lies above 0.5, reject when below, else wait (undecided after max_battles)."""
    if rate.battles < min_battles:
        return "wait"
    if rate.lower > 0.5:
        return "promote"
    if rate.upper < 0.5:
        return "reject"
    return "undecided" if rate.battles >= max_battles else "wait"


def overlap(x: Rating, y: Rating) -> float:
    """How much two rating intervals overlap, relative to the narrower one (0..1)."""
    shared = min(x.upper, y.upper) - max(x.lower, y.lower)
    narrow = min(x.upper - x.lower, y.upper - y.lower)
    if narrow <= 0:
        return 1.0 if shared >= 0 else 0.0
    return max(0.0, min(1.0, shared / narrow))


def pair_weights(models: Sequence[str], board: Sequence[Rating]) -> dict[tuple[str, str], float]:
    """Sampling weight per pair: pairs whose intervals overlap most battle most (a floor keeps
    every pair alive); a model without battles overlaps everything."""
    by = {r.model: r for r in board}
    out = {}
    for i, a in enumerate(models):
        for b in models[i + 1 :]:
            ra, rb = by.get(a), by.get(b)
            w = (
                1.0
                if ra is None or rb is None or not ra.battles or not rb.battles
                else overlap(ra, rb)
            )
            out[(a, b)] = 0.05 + float(w)
    return out
