"""Validate a submitted judgment: what can be checked without the task here, the rest (does the
ranking hold exactly the task's candidates? is 'choice' for a K=2 task?) inside the submit
statement, whose verdict `message` turns into the same clear 4xx text."""

from __future__ import annotations

from collections import Counter

from app.labeling.schemas import JudgmentIn


class InvalidJudgment(ValueError):
    pass


# 'choice' as positions in the order shown (a and b are the first and second candidate shown)
CHOICE_POSITIONS: dict[str, list[list[int]]] = {
    "a": [[0], [1]],
    "b": [[1], [0]],
    "tie": [[0, 1]],
    "both_bad": [[0, 1]],
}


def check(body: JudgmentIn, criteria: list[str], flags: list[str]) -> list[int] | None:
    """Raise InvalidJudgment for anything wrong in the body alone; returns the ranking's
    candidate ids sorted (None for a 'choice')."""
    if (body.ranking is None) == (body.choice is None):
        raise InvalidJudgment("give exactly one of 'ranking' or 'choice'")
    flat: list[int] | None = None
    if body.ranking is not None:
        flat = [c for group in body.ranking for c in group]
        if any(not group for group in body.ranking):
            raise InvalidJudgment("ranking groups must not be empty")
        if len(flat) != len(set(flat)):
            raise InvalidJudgment("a candidate appears more than once in the ranking")
        flat.sort()
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
    return flat


def message(verdict: str, task_id: int, candidate_ids: list[int], required: int | None) -> str:
    """The text of a refusal the submit statement decided."""
    return {
        "not_found": f"task {task_id} does not exist",
        "not_assigned": f"task {task_id} was never assigned to you; get one from "
        "/api/v1/tasks/next",
        "skipped": f"you skipped task {task_id}; it can no longer be judged by you",
        "choice_k": "'choice' is only for tasks with 2 candidates; send 'ranking'",
        "bad_ranking": "ranking must contain each of the task's candidates exactly once: "
        f"{sorted(candidate_ids)}",
        "full": f"task {task_id} already has its {required} required judgment(s) and your "
        "lease expired; your judgment was not stored",
    }[verdict]
