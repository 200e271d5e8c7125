"""ordered_pairs and aggregate: tie groups, both-bad, majority votes, agreement filter."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.preferences.pairs import aggregate, iter_aggregated, ordered_pairs, tied_pairs


@dataclass
class J:
    task_id: int
    ranking: list[list[int]]
    choice: str | None = None


def test_ordered_pairs_across_groups_only() -> None:
    assert ordered_pairs([[3], [1, 2], [4]]) == [(3, 1), (3, 2), (3, 4), (1, 4), (2, 4)]
    assert ordered_pairs([[1, 2]]) == []
    assert ordered_pairs([[1, 2]], "both_bad") == []
    assert ordered_pairs([[1], [2]], "both_bad") == []
    assert tied_pairs([[3], [2, 1]]) == [(1, 2)]


def test_kwise_gives_k_choose_2_pairs() -> None:
    assert len(ordered_pairs([[i] for i in range(9)])) == 36


def test_majority_vote_and_agreement() -> None:
    js = [J(1, [[10], [11]]), J(1, [[10], [11]]), J(1, [[11], [10]]), J(2, [[20], [21]])]
    pairs = aggregate(js)
    assert [(p.task_id, p.winner_id, p.loser_id) for p in pairs] == [(1, 10, 11), (2, 20, 21)]
    p = pairs[0]
    assert (p.wins, p.losses, p.ties, p.votes) == (2, 1, 0, 3)
    assert p.agreement == pytest.approx(2 / 3)
    assert p.margin == pytest.approx(1 / 3)
    assert [x.task_id for x in aggregate(js, min_agreement=0.7)] == [2]


def test_ties_and_both_bad_are_votes_not_pairs() -> None:
    js = [J(1, [[1, 2]], "tie"), J(1, [[1, 2]], "both_bad"), J(1, [[2], [1]], "b")]
    assert aggregate(js) == []
    (p,) = aggregate(js, include_ties=True)
    assert p.is_tie and (p.ties, p.both_bad, p.wins + p.losses) == (2, 1, 1)
    # a level split is a tie as well
    assert aggregate([J(1, [[1], [2]]), J(1, [[2], [1]])]) == []


def test_iter_aggregated_streams_sorted_input_and_matches_aggregate() -> None:
    js = [J(t, [[t * 10 + (t % 3)], [t * 10 + 5], [t * 10 + 7]]) for t in range(1, 30)]
    assert list(iter_aggregated(iter(js))) == aggregate(reversed(js))
