"""Automatic training: queue a reward run when enough new judgments arrived (PREFLOOP_RM_EVERY_N)
or enough time passed (PREFLOOP_RM_EVERY_MINUTES), then a PPO run once a new reward model is
ready (PREFLOOP_PPO_AFTER_REWARD). 0 / false switches each trigger off.

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
from app.models import Judgment, ModelKind, ModelVersion, Run, RunKind, utcnow
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
    params: dict[str, Any] = {"max_judgment_id": int(newest), "new_judgments": int(new)}
    if every_n > 0 and new >= every_n:
        return {**params, "trigger": f"{new} new judgments (every {every_n})"}
    if every_min > 0:
        since = last.created_at if last is not None else oldest_at
        if since is not None and now - since >= timedelta(minutes=every_min):
            return {**params, "trigger": f"{every_min:g} minutes passed with {new} new judgments"}
    return None


def _used_reward_ids(session: Session) -> set[int]:
    """Reward versions some PPO run already started from (by params, metrics or versions)."""
    used: set[int] = set()
    recent = session.execute(
        select(Run.params, Run.metrics)
        .where(Run.kind == RunKind.ppo)
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


def ppo_due(session: Session, settings: Settings) -> dict[str, Any] | None:
    """Params for a PPO run if a reward model is ready that no PPO run has used yet."""
    if not settings.ppo_after_reward:
        return None
    if runs.count_active(session, RunKind.ppo) or runs.count_active(session, RunKind.reward):
        return None
    if registry.active_version(session, ModelKind.policy) is None:
        return None
    newest = newest_reward_version(session)
    if newest is None or newest.id in _used_reward_ids(session):
        return None
    return {"reward_version_id": newest.id, "trigger": f"reward model {newest.version} ready"}


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
    params = ppo_due(session, settings)
    if params is not None:
        run = runs.create_run(session, RunKind.ppo, {**params, "auto": True}, None)
        log.info("queued PPO run %s: %s", run.id, params["trigger"])
        queued.append(run.id)
    return queued
