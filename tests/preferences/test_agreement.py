"""Agreement: matches krippendorff on reliability data; per-labeler majority; sampling cap."""

from __future__ import annotations

import random

import krippendorff
import numpy as np
import pytest

from app.preferences import agreement as ag
from app.preferences.agreement import Vote, agreement


def _tasks(seed: int, n: int) -> tuple[list[list[Vote]], list[list[float]]]:
    """n two-candidate tasks judged by 3 of 4 coders; also the coders x units matrix."""
    rnd = random.Random(seed)
    tasks, matrix = [], [[np.nan] * n for _ in range(4)]
    for t in range(n):
        a, b = 2 * t, 2 * t + 1
        votes = []
        for coder in rnd.sample(range(4), 3):
            value = rnd.choice([0, 0, 0, 1, 2])
            ranking = [[a], [b]] if value == 0 else [[a, b]] if value == 1 else [[b], [a]]
            votes.append(Vote(f"c{coder}", ranking, "tie" if value == 1 else None))
            matrix[coder][t] = value
        tasks.append(votes)
    return tasks, matrix


def test_alpha_matches_krippendorff_on_reliability_data() -> None:
    tasks, matrix = _tasks(1, 300)
    report = agreement(tasks)
    expected = krippendorff.alpha(
        reliability_data=matrix, value_domain=[0, 1, 2], level_of_measurement="ordinal"
    )
    assert report.alpha == pytest.approx(expected)
    assert report.units == report.alpha_units == 300
    # percent agreement: agreeing ordered coder pairs over all ordered coder pairs
    agree = total = 0
    for t in range(300):
        vals = [matrix[c][t] for c in range(4) if not np.isnan(matrix[c][t])]
        for i, x in enumerate(vals):
            for j, y in enumerate(vals):
                if i != j:
                    total += 1
                    agree += x == y
    assert report.percent == pytest.approx(agree / total)


def test_per_labeler_against_majority_of_others() -> None:
    a_wins, b_wins = [[1], [2]], [[2], [1]]
    votes = [Vote("x", a_wins), Vote("y", a_wins), Vote("z", b_wins)]
    report = agreement([votes, votes])
    by = {lab.coder: lab for lab in report.labelers}
    assert (by["z"].compared, by["z"].agreed) == (2, 0)  # others agree on a
    assert (by["x"].compared, by["x"].agreed) == (0, 0)  # others split: no majority
    assert by["z"].percent == 0 and by["x"].percent is None


def test_single_judgments_and_no_variation_give_no_alpha() -> None:
    single = agreement([[Vote("x", [[1], [2]])]])
    assert (single.units, single.alpha, single.percent) == (0, None, None)
    same = agreement([[Vote("x", [[1], [2]]), Vote("y", [[1], [2]])]])
    assert same.percent == 1.0 and same.alpha is None


def test_alpha_is_sampled_beyond_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    tasks, _ = _tasks(2, 3000)
    exact = agreement(tasks).alpha
    monkeypatch.setattr(ag, "ALPHA_MAX_UNITS", 1500)
    sampled = agreement(tasks)
    assert sampled.alpha_units == 1500 and sampled.units == 3000
    assert sampled.alpha == pytest.approx(exact, abs=0.06)
    assert sampled.alpha != exact
