"""Automatic training: queue a reward run when enough new judgments arrived (PREFLOOP_RM_EVERY_N)
or enough time passed (PREFLOOP_RM_EVERY_MINUTES), then a policy run of
PREFLOOP_POLICY_ALGORITHM: ppo/rloo/grpo once a new reward model is ready
(PREFLOOP_POLICY_AFTER_REWARD, alias PREFLOOP_PPO_AFTER_REWARD), dpo after every
PREFLOOP_DPO_EVERY_N new judgments. 0 / false switches each trigger off. A reward run queued by
"exclude and retrain" (then_policy) is followed once by a policy run of the configured algorithm,
dpo included, whatever the triggers say.

Called by the worker loop every few seconds with a sync session; idempotent: it never queues a
run while one of the same kind is queued or running, and never twice for the same data.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import is_postgres
from app.models import Judgment, ModelKind, ModelStatus, ModelVersion, Run, RunKind, utcnow
from app.models_registry import service as registry
from app.runs import service as runs
from workers.jobs.training import newest_reward_version

log = logging.getLogger("prefloop.scheduler")

_LOCK_KEY = 0x7072_6673  # serializes scheduling across PostgreSQL workers
RECENT = 200


def _watermark(session: Session, run: Run) -> int:
    """The newest judgment id a reward run covered (or would have covered)."""
    for source in (run.params or {}, run.metrics or {}):
        value = source.get("max_judgment_id")
        if isinstance(value, int):
            return value
    found = session.scalar(
        select(func.max(Judgment.id)).where(Judgment.created_at <= run.created_at)
    )
    return int(found or 0)


def reward_due(session: Session, settings: Settings, now: datetime) -> dict[str, Any] | None:
    """Params for a reward run if one is due now, else None."""
    every_n, every_min = settings.rm_every_n, settings.rm_every_minutes
    if every_n <= 0 and every_min <= 0:
        return None
    if runs.count_active(session, RunKind.reward):
        return None
    if registry.active_version(session, ModelKind.policy) is None:
        return None
    last = session.scalar(
        select(Run).where(Run.kind == RunKind.reward).order_by(Run.id.desc()).limit(1)
    )
    mark = _watermark(session, last) if last is not None else 0
    new, newest, oldest_at = session.execute(
        select(func.count(), func.max(Judgment.id), func.min(Judgment.created_at)).where(
            Judgment.id > mark
        )
    ).one()
    if not new:
        return None
    params: dict[str, Any] = {
        "max_judgment_id": int(newest),
        "new_judgments": int(new),
        **_weighting(settings),
    }
    if every_n > 0 and new >= every_n:
        return {**params, "trigger": f"{new} new judgments (every {every_n})"}
    if every_min > 0:
        since = last.created_at if last is not None else oldest_at
        if since is not None and now - since >= timedelta(minutes=every_min):
            return {**params, "trigger": f"{every_min:g} minutes passed with {new} new judgments"}
    return None


def _used_reward_ids(session: Session) -> set[int]:
    """Reward versions some policy run already started from (by params, metrics or versions)."""
    used: set[int] = set()
    recent = session.execute(
        select(Run.params, Run.metrics)
        .where(Run.kind.in_([RunKind.ppo, RunKind.policy]))
        .order_by(Run.id.desc())
        .limit(RECENT)
    )
    for params, metrics in recent:
        for source in (params or {}, metrics or {}):
            if isinstance(source.get("reward_version_id"), int):
                used.add(source["reward_version_id"])
    versions = session.scalars(
        select(ModelVersion.metrics)
        .where(ModelVersion.kind == ModelKind.policy)
        .order_by(ModelVersion.id.desc())
        .limit(RECENT)
    )
    for metrics in versions:
        if isinstance((metrics or {}).get("reward_version_id"), int):
            used.add(metrics["reward_version_id"])
    return used


def _policy_busy(session: Session) -> bool:
    return bool(
        runs.count_active(session, RunKind.ppo) or runs.count_active(session, RunKind.policy)
    )


def _pending_ask(session: Session, used: set[int]) -> Run | None:
    """The newest reward run that asked for a policy run after it ("exclude and retrain":
    then_policy) whose reward version is ready, unless a policy run already used that version
    or a newer one (any newer reward model is as clean: excluded judgments stay out)."""
    asked = session.execute(
        select(ModelVersion.id, Run)
        .join(Run, Run.id == ModelVersion.run_id)
        .where(
            ModelVersion.kind == ModelKind.reward,
            ModelVersion.status.in_([ModelStatus.ready, ModelStatus.active]),
        )
        .order_by(ModelVersion.id.desc())
        .limit(RECENT)
    )
    for version_id, run in asked:
        if (run.params or {}).get("then_policy"):
            return None if max(used, default=0) >= version_id else run
    return None


def _covered_max(version: ModelVersion) -> int | None:
    """The newest judgment id a reward version trained on (from its recorded id ranges)."""
    ranges = (version.metrics or {}).get("judgment_id_ranges") or []
    return max((int(r[1]) for r in ranges), default=None)


def ppo_due(session: Session, settings: Settings) -> dict[str, Any] | None:
    """Params for a policy run after a reward model: ppo/rloo/grpo when one is ready that no
    policy run used yet (POLICY_AFTER_REWARD); any algorithm, dpo included, once after the
    reward run of "exclude and retrain" (it asks with then_policy), even with the trigger off.

    DPO learns from the pairs, not the reward model: its run covers the same judgments as that
    reward model (max_judgment_id), whose clean version then serves its gate, and carries the
    reward run's trust weighting over."""
    algorithm = settings.policy_algorithm
    if _policy_busy(session) or runs.count_active(session, RunKind.reward):
        return None
    if registry.active_version(session, ModelKind.policy) is None:
        return None
    newest = newest_reward_version(session)
    if newest is None:
        return None
    used = _used_reward_ids(session)
    ask = _pending_ask(session, used)
    if ask is None:
        if algorithm == "dpo" or not settings.policy_after_reward_on or newest.id in used:
            return None
        return {
            "algorithm": algorithm,
            "reward_version_id": newest.id,
            "trigger": f"reward model {newest.version} ready",
        }
    params: dict[str, Any] = {
        "algorithm": algorithm,
        "reward_version_id": newest.id,
        "trigger": f"reward model {newest.version} ready after {(ask.params or {}).get('trigger')}",
    }
    if algorithm == "dpo":
        covered = _covered_max(newest)
        if covered is not None:
            params["max_judgment_id"] = covered
        weighting = (ask.params or {}).get("weighting")
        if weighting and weighting != "none":
            params["weighting"] = weighting
    return params


def _dpo_watermark(session: Session) -> int:
    """The newest judgment id the last DPO run covered (0 if none)."""
    recent = session.execute(
        select(Run.params, Run.metrics)
        .where(Run.kind == RunKind.policy)
        .order_by(Run.id.desc())
        .limit(RECENT)
    )
    for params, metrics in recent:
        if (params or {}).get("algorithm") != "dpo":
            continue
        for source in (params or {}, metrics or {}):
            if isinstance(source.get("max_judgment_id"), int):
                return int(source["max_judgment_id"])
    return 0


def dpo_due(session: Session, settings: Settings) -> dict[str, Any] | None:
    """Params for a DPO run if PREFLOOP_DPO_EVERY_N judgments arrived since the last one."""
    every_n = settings.dpo_every_n
    if settings.policy_algorithm != "dpo" or every_n <= 0 or _policy_busy(session):
        return None
    if registry.active_version(session, ModelKind.policy) is None:
        return None
    mark = _dpo_watermark(session)
    new, newest = session.execute(
        select(func.count(), func.max(Judgment.id)).where(Judgment.id > mark)
    ).one()
    if not new or new < every_n:
        return None
    return {
        "algorithm": "dpo",
        "max_judgment_id": int(newest),
        "new_judgments": int(new),
        **_weighting(settings),
        "trigger": f"{new} new judgments (every {every_n})",
    }


def _weighting(settings: Settings) -> dict[str, str]:
    """PREFLOOP_TRAIN_WEIGHTING for a scheduled reward or DPO run (nothing when "none")."""
    w = settings.train_weighting
    return {} if w == "none" else {"weighting": w}


def tick(session: Session, settings: Settings, now: datetime | None = None) -> list[int]:
    """Queue whatever training is due; returns the ids of the runs queued."""
    now = now or utcnow()
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    queued: list[int] = []
    params = reward_due(session, settings, now)
    if params is not None:
        run = runs.create_run(session, RunKind.reward, {**params, "auto": True}, None)
        log.info("queued reward run %s: %s", run.id, params["trigger"])
        queued.append(run.id)
    params = ppo_due(session, settings) or dpo_due(session, settings)
    if params is not None:
        run = runs.create_run(session, RunKind.policy, {**params, "auto": True}, None)
        log.info("queued %s run %s: %s", params["algorithm"], run.id, params["trigger"])
        queued.append(run.id)
    return queued
