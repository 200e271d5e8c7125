"""Labeler agreement on pairwise preferences: percent agreement and Krippendorff's alpha.

Every (task, unordered candidate pair) is a unit; each judgment of the task gives it one value
on the ordered scale 0 = "lower id preferred", 1 = "tied" (ties and both-bad), 2 = "higher id
preferred". Accumulation is streaming (one task at a time, memory bounded by the number of
labelers): units are kept as counts of identical value-count vectors.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import krippendorff
import numpy as np

from app.preferences.pairs import ordered_pairs, tied_pairs

LO, TIE, HI = 0, 1, 2
DOMAIN = [LO, TIE, HI]
#: beyond this many units alpha is computed on a uniform random sample of them (the package
#: materializes units x values x values floats; this keeps an export's memory flat)
ALPHA_MAX_UNITS = 50_000


@dataclass(frozen=True)
class Vote:
    """One coder's ranking of one task (`coder` = pseudonymous labeler id or source name)."""

    coder: str
    ranking: Any
    choice: str | None = None


@dataclass
class LabelerAgreement:
    coder: str
    judgments: int = 0
    compared: int = 0  # pair votes where the other labelers had a strict majority
    agreed: int = 0
    alpha: float | None = None

    @property
    def percent(self) -> float | None:
        return self.agreed / self.compared if self.compared else None


@dataclass
class AgreementReport:
    tasks: int
    multi_judged_tasks: int
    units: int  # pairs judged by >= 2 coders
    percent: float | None  # pairwise percent agreement over coder pairs
    alpha: float | None
    alpha_units: int = 0  # units alpha was computed on (a sample when fewer than `units`)
    labelers: list[LabelerAgreement] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "multi_judged_tasks": self.multi_judged_tasks,
            "units": self.units,
            "percent": self.percent,
            "alpha": self.alpha,
            "alpha_units": self.alpha_units,
            "level": "ordinal",
            "labelers": [
                {
                    "labeler": lab.coder,
                    "judgments": lab.judgments,
                    "compared": lab.compared,
                    "agreed": lab.agreed,
                    "percent": lab.percent,
                    "alpha": lab.alpha,
                }
                for lab in self.labelers
            ],
        }


def pair_values(ranking: Any, choice: str | None) -> dict[tuple[int, int], int]:
    """Value of every unordered pair (lo, hi) under one ranking."""
    out: dict[tuple[int, int], int] = {}
    for w, loser in ordered_pairs(ranking or []):
        out[(min(w, loser), max(w, loser))] = LO if w < loser else HI
    for key in tied_pairs(ranking or []):
        out[key] = TIE
    return out


def _alpha(rows: Counter[tuple[int, ...]]) -> tuple[float | None, int]:
    """Ordinal Krippendorff's alpha over units given as {value-count vector: how many units}.

    Ordinal, not nominal: "tied" lies between the two directed preferences, so a labeler who
    says "tie" where another says "A better" disagrees less than one who says "B better";
    nominal alpha would count both as full disagreements. Undefined (None) without variation.
    Returns (alpha, units used): above ALPHA_MAX_UNITS a seeded uniform sample of units
    (multivariate hypergeometric over the vector counts) is used.
    """
    if not rows:
        return None, 0
    vectors = np.array(list(rows), dtype=np.float64)
    counts = np.fromiter(rows.values(), dtype=np.int64)
    if counts.sum() > ALPHA_MAX_UNITS:
        rng = np.random.default_rng(0)
        counts = rng.multivariate_hypergeometric(counts, ALPHA_MAX_UNITS, method="marginals")
    used = int(counts.sum())
    value_counts = np.repeat(vectors, counts, axis=0)
    if value_counts.sum(axis=1).max() < 2:
        return None, used
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(
            krippendorff.alpha(
                value_counts=value_counts, value_domain=DOMAIN, level_of_measurement="ordinal"
            )
        )
    return (value if math.isfinite(value) else None), used


class AgreementAccumulator:
    """Feed tasks one by one (`add_task`), then read `report()`."""

    def __init__(self) -> None:
        self.tasks = 0
        self.multi = 0
        self.units: Counter[tuple[int, ...]] = Counter()
        self.coder_pairs = 0
        self.coder_pairs_agreeing = 0
        self.per: dict[str, LabelerAgreement] = {}
        self.per_units: dict[str, Counter[tuple[int, ...]]] = {}

    def add_task(self, votes: Iterable[Vote]) -> None:
        votes = list(votes)
        self.tasks += 1
        for v in votes:
            self.per.setdefault(v.coder, LabelerAgreement(v.coder)).judgments += 1
        if len(votes) < 2:
            return
        self.multi += 1
        values = [pair_values(v.ranking, v.choice) for v in votes]
        for unit in set().union(*values):
            coded = [
                (v.coder, vals[unit]) for v, vals in zip(votes, values, strict=True) if unit in vals
            ]
            if len(coded) < 2:
                continue
            counts = [0, 0, 0]
            for _, value in coded:
                counts[value] += 1
            self.units[tuple(counts)] += 1
            m = len(coded)
            self.coder_pairs += m * (m - 1)
            self.coder_pairs_agreeing += sum(c * (c - 1) for c in counts)
            for coder, value in coded:
                others = counts.copy()
                others[value] -= 1
                top = max(others)
                if others.count(top) > 1:
                    continue  # the other labelers have no strict majority on this pair
                majority = others.index(top)
                lab = self.per[coder]
                lab.compared += 1
                lab.agreed += value == majority
                vec = [0, 0, 0]
                vec[value] += 1
                vec[majority] += 1
                self.per_units.setdefault(coder, Counter())[tuple(vec)] += 1

    def report(self) -> AgreementReport:
        labelers = sorted(self.per.values(), key=lambda lab: lab.coder)
        for lab in labelers:
            lab.alpha = _alpha(self.per_units.get(lab.coder, Counter()))[0]
        alpha, used = _alpha(self.units)
        return AgreementReport(
            tasks=self.tasks,
            multi_judged_tasks=self.multi,
            units=sum(self.units.values()),
            percent=self.coder_pairs_agreeing / self.coder_pairs if self.coder_pairs else None,
            alpha=alpha,
            alpha_units=used,
            labelers=labelers,
        )


def agreement(tasks: Iterable[Iterable[Vote]]) -> AgreementReport:
    """Agreement over tasks, each given as its votes."""
    acc = AgreementAccumulator()
    for votes in tasks:
        acc.add_task(votes)
    return acc.report()
