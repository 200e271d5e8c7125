"""The generate job's selection step (PREFLOOP_SELECTION): sample a pool per prompt, score it with
the newest ready reward model and keep the K the model is least sure about, or keep the K
sampled at random. Every task records how it was chosen (method, reward gap) and gets its queue
priority from the model's uncertainty. Scoring runs here, in the worker, never on a request."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import ComparisonTask
from ml.limits import replace_nul
from ml.selection import Choice, RewardScorer, choose
from workers.jobs.training import newest_reward_version

Sample = tuple[str, int | None, str]
_scorers: dict[str, RewardScorer] = {}


@dataclass
class Selection:
    """How one generate run picks candidates: `sample` per prompt, keep `k`."""

    k: int
    sample: int
    explore: float = 0.0
    scorer: RewardScorer | None = None
    reward_version: str | None = None
    rng: random.Random = field(default_factory=random.Random)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return "uncertainty" if self.scorer is not None else "random"

    def keep(
        self, messages: list[Any], samples: list[Sample]
    ) -> tuple[list[Sample], Choice | None]:
        """The samples to store as a task, and why they were kept (None: random mode)."""
        if self.scorer is None:
            return samples, None
        distinct: dict[str, Sample] = {}
        for s in samples:
            text = replace_nul(s[0]).strip()
            if text and text not in distinct:
                distinct[text] = s
        pool = list(distinct.values())
        if len(pool) < 2:
            return pool, None
        rewards = self.scorer.score(list(messages), [s[0] for s in pool])
        picked = choose(rewards, self.k, self.explore, self.rng)
        return [pool[i] for i in picked.indices], picked

    def record(self, session: Session, task_id: int, why: Choice | None) -> None:
        method = why.method if why is not None else "random"
        self.counts[method] = self.counts.get(method, 0) + 1
        values: dict[str, Any] = {"selection_method": method}
        if why is not None:
            values.update(selection_score=round(why.gap, 6), priority=why.priority)
        session.execute(update(ComparisonTask).where(ComparisonTask.id == task_id).values(values))

    def summary(self) -> dict[str, Any]:
        return {
            "selection": self.method,
            "selection_pool": self.sample,
            "selection_reward_version": self.reward_version,
            "selection_counts": dict(self.counts),
        }


def plan(
    session: Session,
    settings: Any,
    params: dict[str, Any],
    k: int,
    n_versions: int,
    seed: int,
    log: Callable[[str], None],
) -> Selection:
    """The run's selection: uncertainty when asked for, with one policy version and a ready
    reward model; otherwise random (as before)."""
    mode = str(params.get("selection") or settings.selection)
    if mode not in ("random", "uncertainty"):
        from workers.jobs.training import JobParamError

        raise JobParamError("selection must be random or uncertainty")
    if mode == "random":
        return Selection(k, k)
    if n_versions != 1:
        log("selection: A/B versions are kept as sampled (uncertainty needs one policy)")
        return Selection(k, k)
    rm = newest_reward_version(session)
    if rm is None:
        log("selection: no reward model is ready yet; candidates are kept at random")
        return Selection(k, k)
    pool = max(int(params.get("pool") or settings.gen_pool), k)
    explore = float(settings.explore if params.get("explore") is None else params["explore"])
    if not 0.0 <= explore <= 1.0:
        from workers.jobs.training import JobParamError

        raise JobParamError("explore must be between 0 and 1")
    scorer = _scorers.get(rm.path)
    if scorer is None:
        _scorers.clear()
        scorer = _scorers[rm.path] = RewardScorer(rm.path)
    log(f"selection: uncertainty with reward model {rm.version}, pool {pool}, explore {explore}")
    return Selection(k, pool, explore, scorer, rm.version, random.Random(seed))
