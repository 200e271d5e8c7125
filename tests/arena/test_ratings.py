"""Bradley-Terry against a known synthetic truth, intervals, Wilson, the gate and pair weights."""

from __future__ import annotations

import math
import random

from app.arena.ratings import (
    ELO,
    fit_bt,
    gate,
    leaderboard,
    pair_weights,
    wilson,
    win_rate,
)

TRUTH = {"a": 1.0, "b": 0.3, "c": 0.0, "d": -1.3}  # log-odds strengths, mean 0


def simulate(n: int, seed: int, tie_rate: float = 0.0) -> list[tuple[str, str, float]]:
    rng = random.Random(seed)
    names = list(TRUTH)
    out = []
    for _ in range(n):
        x, y = rng.sample(names, 2)
        p = 1 / (1 + math.exp(TRUTH[y] - TRUTH[x]))
        if rng.random() < tie_rate:
            out.append((x, y, 0.5))
        else:
            out.append((x, y, 1.0 if rng.random() < p else 0.0))
    return out


def test_bt_recovers_synthetic_strengths() -> None:
    fit = fit_bt(simulate(6000, seed=1))
    for m, true in TRUTH.items():
        assert abs(fit[m] - true) < 0.12, (m, fit[m], true)
    assert sorted(fit, key=fit.get) == ["d", "c", "b", "a"]


def test_ties_count_half_a_win() -> None:
    # only ties: everyone equal; a tie between a and b moves them together, not apart
    fit = fit_bt([("a", "b", 0.5)] * 20 + [("b", "a", 0.5)] * 20)
    assert abs(fit["a"] - fit["b"]) < 1e-9
    # 3 wins + 2 ties out of 5: score 4/5 -> log-odds ln(4) (ridge negligible)
    fit = fit_bt([("a", "b", 1.0)] * 3 + [("a", "b", 0.5)] * 2)
    assert abs((fit["a"] - fit["b"]) - math.log(4)) < 0.01


def test_bootstrap_intervals_cover_truth_and_shrink() -> None:
    small = {r.model: r for r in leaderboard(simulate(300, seed=2), rounds=200, seed=0)}
    big = {r.model: r for r in leaderboard(simulate(3000, seed=2), rounds=200, seed=0)}
    centre = sum(TRUTH.values()) / len(TRUTH)
    for m, true in TRUTH.items():
        r = big[m]
        assert r.lower <= r.rating <= r.upper
        assert r.lower - 1 <= 1000 + ELO * (true - centre) <= r.upper + 1, m
        assert (r.upper - r.lower) < (small[m].upper - small[m].lower)
    assert list(big) == ["a", "b", "c", "d"]  # best first


def test_separated_model_stays_finite() -> None:
    board = leaderboard([("a", "b", 1.0)] * 30, rounds=50)
    assert all(math.isfinite(r.rating) and math.isfinite(r.lower) for r in board)
    assert board[0].model == "a"


def test_wilson_and_win_rate() -> None:
    lo, hi = wilson(60, 100)
    assert 0.50 < lo < 0.51 and 0.69 < hi < 0.70  # the textbook 0.502..0.691
    assert wilson(0, 0) == (0.0, 1.0)
    outcomes = [("x", "y", 1.0)] * 6 + [("y", "x", 1.0)] * 2 + [("y", "x", 0.5)] * 2
    r = win_rate(outcomes, "x", "y")
    assert r.battles == 10 and r.score == 7.0 and abs(r.win_rate - 0.7) < 1e-12


def test_gate_both_ways() -> None:
    better = win_rate([("c", "a", 1.0)] * 70 + [("c", "a", 0.0)] * 30, "c", "a")
    worse = win_rate([("c", "a", 1.0)] * 30 + [("c", "a", 0.0)] * 70, "c", "a")
    even = win_rate([("c", "a", 0.5)] * 100, "c", "a")
    assert gate(better, 50, 1000) == "promote"
    assert gate(worse, 50, 1000) == "reject"
    assert gate(better, 200, 1000) == "wait"  # too few battles yet
    assert gate(even, 50, 1000) == "wait"
    assert gate(even, 50, 100) == "undecided"


def test_pair_weights_favour_overlap() -> None:
    outcomes = simulate(200, seed=3)
    board = leaderboard(outcomes, rounds=100)
    w = pair_weights(["a", "b", "c", "d"], board)
    assert w[("b", "c")] > w[("a", "d")]  # b and c are close, a and d far apart
    assert min(w.values()) > 0  # every pair keeps a chance
    fresh = pair_weights(["a", "new"], board)
    assert fresh[("a", "new")] == max(fresh.values())
