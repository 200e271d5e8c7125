"""Choosing which candidates of a pool get labeled: least certain window, exploration share."""

from __future__ import annotations

import random

from ml.selection import choose, least_certain, uncertainty


def test_least_certain_is_the_narrowest_window() -> None:
    rewards = [3.0, -1.0, 0.9, 1.0, 2.5]
    assert least_certain(rewards, 2) == [2, 3]
    assert least_certain(rewards, 3) == [2, 3, 4]  # 0.9..2.5 (1.6) beats -1..1 (2.0)
    assert least_certain(rewards, 5) == [0, 1, 2, 3, 4]


def test_uncertainty_is_one_at_a_tie_and_falls_with_the_gap() -> None:
    assert uncertainty(0.0) == 1.0
    assert 1.0 > uncertainty(0.5) > uncertainty(2.0) > uncertainty(8.0) > 0.0
    assert uncertainty(2.0, k=3) == uncertainty(1.0, k=2)  # mean neighbour gap
    assert uncertainty(float("nan")) == 0.0


def test_explore_share_is_random_and_recorded() -> None:
    rng = random.Random(0)
    rewards = [0.0, 0.05, 3.0, 6.0]
    picks = [choose(rewards, 2, 0.25, rng) for _ in range(2000)]
    explored = [p for p in picks if p.method == "explore"]
    assert 0.21 < len(explored) / len(picks) < 0.29
    assert all(
        p.indices == [0, 1] and abs(p.gap - 0.05) < 1e-12 for p in picks if p not in explored
    )
    assert len({tuple(p.indices) for p in explored}) == 6  # every pair of 4 shows up
    assert all(p.gap == max(rewards[i] for i in p.indices) - min(rewards[i] for i in p.indices)
               for p in explored)  # fmt: skip
    assert all(p.method == "uncertainty" for p in (choose(rewards, 2, 0.0, rng) for _ in range(50)))
