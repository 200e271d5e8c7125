"""Validate a submitted judgment against the task it is for."""

from __future__ import annotations

from collections import Counter

from app.labeling.schemas import JudgmentIn


class InvalidJudgment(ValueError):
    pass


def normalize(
    body: JudgmentIn,
    candidate_ids: list[int],
    shown_order: list[int],
    criteria: list[str],
    flags: list[str],
) -> list[list[int]]:
    """Return the ranking (best group first) after checking every field; raise InvalidJudgment."""
    if (body.ranking is None) == (body.choice is None):
        raise InvalidJudgment("give exactly one of 'ranking' or 'choice'")
    if body.choice is not None:
        if len(candidate_ids) != 2:
            raise InvalidJudgment("'choice' is only for tasks with 2 candidates; send 'ranking'")
        a, b = shown_order
        ranking = {"a": [[a], [b]], "b": [[b], [a]]}.get(body.choice, [[a, b]])
    else:
        ranking = body.ranking or []
        flat = [c for group in ranking for c in group]
        if any(not group for group in ranking):
            raise InvalidJudgment("ranking groups must not be empty")
        if len(flat) != len(set(flat)):
            raise InvalidJudgment("a candidate appears more than once in the ranking")
        if set(flat) != set(candidate_ids):
            raise InvalidJudgment(
                "ranking must contain each of the task's candidates exactly once: "
                f"{sorted(candidate_ids)}"
            )
    for name, value in body.ratings.items():
        if name not in criteria:
            raise InvalidJudgment(
                f"unknown rating criterion {name!r}; known: {', '.join(criteria)}"
            )
        if not 1 <= value <= 5:
            raise InvalidJudgment(f"rating {name!r} must be between 1 and 5")
    unknown = [f for f in body.flags if f not in flags]
    if unknown:
        raise InvalidJudgment(f"unknown flag(s) {unknown}; known: {', '.join(flags)}")
    repeated = sorted(f for f, n in Counter(body.flags).items() if n > 1)
    if repeated:  # a flag counted twice would skew flag statistics and export filters
        raise InvalidJudgment(f"flag(s) given more than once: {repeated}")
    return ranking
