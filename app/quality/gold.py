"""Gold answers: what an admin accepts for a gold task, and scoring a judgment against it.

An answer is given in the task's canonical candidate order (positions 0..K-1, the order of the
import line's `completions`; "a"/"b" are positions 0/1 of a K=2 task):

- `{"ranking": [[0], [2], [1]]}`: one accepted ranking (groups best first, ties share a group);
- `{"choice": "a"}` or `{"choice": ["a", "tie"]}`: K=2, one or several accepted choices
  (tolerance: either answer counts as correct).

It is stored on the task (`comparison_tasks.gold`) as `{"accept": [ranking, ...]}` in completion
ids, each ranking normalized (ids sorted within a group), so scoring is a set lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Choice = Literal["a", "b", "tie"]
Ranking = list[list[int]]

_CHOICE_POSITIONS: dict[str, Ranking] = {"a": [[0], [1]], "b": [[1], [0]], "tie": [[0, 1]]}


class GoldError(ValueError):
    """A gold answer that does not fit its task (HTTP 422, or a line-numbered import error)."""


class GoldIn(BaseModel):
    """A gold answer in candidate positions: exactly one of `ranking` or `choice`."""

    model_config = ConfigDict(extra="forbid")

    ranking: list[list[int]] | None = Field(
        None, description="positions (0-based, canonical order) grouped best first"
    )
    choice: Choice | list[Choice] | None = Field(
        None, description="K=2: the accepted choice, or a list of accepted choices"
    )

    @model_validator(mode="after")
    def _one(self) -> GoldIn:
        if (self.ranking is None) == (self.choice is None):
            raise ValueError("give exactly one of 'ranking' or 'choice'")
        if isinstance(self.choice, list) and not self.choice:
            raise ValueError("'choice' lists at least one accepted answer")
        return self


def normalized(ranking: Sequence[Sequence[int]]) -> Ranking:
    return [sorted(int(c) for c in group) for group in ranking if group]


def accepted(gold: GoldIn, completion_ids: Sequence[int]) -> dict[str, Any]:
    """The stored form for a task whose candidates (canonical order) are `completion_ids`."""
    k = len(completion_ids)
    if gold.choice is not None:
        if k != 2:
            raise GoldError(f"'choice' is only for tasks with 2 candidates (this one has {k})")
        choices = gold.choice if isinstance(gold.choice, list) else [gold.choice]
        rankings = [_CHOICE_POSITIONS[c] for c in dict.fromkeys(choices)]
    else:
        assert gold.ranking is not None
        flat = [p for g in gold.ranking for p in g]
        if sorted(flat) != list(range(k)) or any(not g for g in gold.ranking):
            raise GoldError(
                f"gold ranking must hold each position 0..{k - 1} exactly once, in non-empty groups"
            )
        rankings = [gold.ranking]
    return {"accept": [normalized([[completion_ids[p] for p in g] for g in r]) for r in rankings]}


def is_correct(gold: dict[str, Any] | None, ranking: Sequence[Sequence[int]]) -> bool | None:
    """Whether a judgment's ranking is one of the accepted answers (None: not a gold task)."""
    if not gold:
        return None
    return normalized(ranking) in gold.get("accept", [])


def describe(gold: dict[str, Any], completion_ids: Sequence[int]) -> str:
    """Accepted answers in positions, for pages: "1 > 2 = 3 or 1 = 2"."""
    pos = {c: i + 1 for i, c in enumerate(completion_ids)}
    return " or ".join(
        " > ".join(" = ".join(str(pos.get(c, c)) for c in g) for g in r)
        for r in gold.get("accept", [])
    )
