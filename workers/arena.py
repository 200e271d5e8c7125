"""The worker's arena duties, called from its loop: keep each active campaign stocked with open
battles (queue `battle` runs), and decide gate campaigns (PREFLOOP_PROMOTE_BY=arena|both): a
candidate is promoted once the lower bound of its win rate against the active version is above
0.5, rejected once the upper bound is below 0.5, never before PREFLOOP_ARENA_MIN_BATTLES judged
battles. Decisions, with their numbers, go on the campaign, the version and the run that made it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.arena import service as arena
from app.audit import record
from app.config import Settings
from app.models import (
    ArenaCampaign,
    CampaignStatus,
    ModelKind,
    Run,
    RunKind,
    RunStatus,
    utcnow,
)
from app.models_registry import service as registry
from app.runs import service as runs
from app.webhooks.events import emit

log = logging.getLogger("prefloop.arena")
ACTOR = "worker:arena"  # how the gate's decisions appear in the audit trail


def _busy_campaigns(session: Session) -> set[int]:
    """Campaigns with a battle run queued or running."""
    params = session.scalars(
        select(Run.params).where(
            Run.kind == RunKind.battle, Run.status.in_([RunStatus.queued, RunStatus.running])
        )
    )
    return {int(p["campaign_id"]) for p in params if isinstance(p, dict) and "campaign_id" in p}


def _last_runs(session: Session) -> dict[int, Run]:
    """The newest finished battle run of each campaign (among the recent ones)."""
    recent = session.scalars(
        select(Run)
        .where(Run.kind == RunKind.battle, Run.status.in_([RunStatus.succeeded, RunStatus.failed]))
        .order_by(Run.id.desc())
        .limit(200)
    )
    out: dict[int, Run] = {}
    for run in recent:
        cid = (run.params or {}).get("campaign_id")
        if isinstance(cid, int) and cid not in out:
            out[cid] = run
    return out


def _halt(run: Run) -> str | None:
    """Why a campaign cannot go on, judging by its last battle run (None: it can)."""
    if run.status == RunStatus.failed:
        return f"battle run {run.id} failed: {(run.error or '')[:300]}"
    if (run.metrics or {}).get("battles_created") == 0 and not (run.metrics or {}).get("note"):
        return f"battle run {run.id} could not make a battle (the versions answer alike?)"
    return None


def stock(session: Session, settings: Settings) -> list[int]:
    """Queue a battle run for each active campaign short of open battles; the runs' ids. A
    campaign whose last battle run failed (or made nothing) is stopped with the reason, so a
    broken campaign does not queue a failing run every few seconds."""
    campaigns = list(
        session.scalars(select(ArenaCampaign).where(ArenaCampaign.status == CampaignStatus.active))
    )
    if not campaigns:
        return []
    counts = arena.battle_counts(session)
    busy = _busy_campaigns(session)
    last = _last_runs(session)
    queued = []
    for c in campaigns:
        reason = _halt(last[c.id]) if c.id in last and c.id not in busy else None
        if reason is not None:
            c.status = CampaignStatus.stopped
            c.finished_at = utcnow()
            c.decision = {"verdict": "stopped", "reason": reason, "at": utcnow().isoformat()}
            log.warning("arena campaign %s stopped: %s", c.id, reason)
            continue
        n = counts.get(c.id, {})
        want = settings.arena_open_battles - n.get("open", 0)
        if c.target_battles:
            want = min(want, c.target_battles - n.get("battles", 0))
        if want <= 0 or c.id in busy:
            continue
        run = runs.create_run(session, RunKind.battle, {"campaign_id": c.id, "battles": want}, None)
        queued.append(run.id)
    return queued


def _note_run(session: Session, run_id: int | None, line: str, decision: dict[str, Any]) -> None:
    run = session.get(Run, run_id) if run_id else None
    if run is None:
        return
    run.log_tail = runs.tail(f"{run.log_tail or ''}{line}\n")
    run.metrics = {**(run.metrics or {}), "arena_decision": decision}


def decide(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Settle every gate campaign whose numbers allow it; the decisions made."""
    made = []
    gates = session.scalars(
        select(ArenaCampaign).where(
            ArenaCampaign.status == CampaignStatus.active, ArenaCampaign.purpose == "gate"
        )
    )
    for c in list(gates):
        verdict, rate = arena.gate_verdict(
            session, c, settings.arena_min_battles, settings.arena_max_battles
        )
        if verdict == "wait":
            continue
        numbers = asdict(rate)
        cand = registry.get_version(session, c.candidate_id) if c.candidate_id else None
        active = registry.active_version(session, ModelKind.policy)
        outcome = verdict
        why = (
            f"win rate {rate.win_rate:.3f} [{rate.lower:.3f}, {rate.upper:.3f}] over "
            f"{rate.battles} battles against {rate.opponent}"
        )
        if cand is None:
            outcome, why = "abandoned", "the candidate version is gone"
        elif verdict == "promote":
            if active is None or active.id != c.baseline_id:
                outcome = "not_promoted"
                why += "; the active policy changed meanwhile, not promoted"
            else:
                try:
                    registry.activate(session, cand.id)
                    registry.record_activation(session, ACTOR, cand, active.id, None)
                    why = "promoted: " + why
                except registry.RegistryError as e:
                    outcome, why = "promotion_failed", f"{why}; activation failed: {e}"
        elif verdict == "reject":
            why = "rejected by the arena: " + why
        else:
            why = "undecided after the battle limit: " + why
        decision = {"verdict": outcome, "reason": why, **numbers, "at": utcnow().isoformat()}
        c.decision = decision
        c.status = CampaignStatus.decided
        c.finished_at = utcnow()
        if cand is not None:
            cand.metrics = {
                **(cand.metrics or {}),
                "arena_decision": outcome,
                "arena_reason": why,
                "arena_win_rate": rate.win_rate,
                "arena_interval": [rate.lower, rate.upper],
                "arena_battles": rate.battles,
                "promoted": outcome == "promote",
                "promotion_reason": why,
            }
        _note_run(session, c.run_id, f"arena campaign {c.id}: {why}", decision)
        target = cand.version if cand is not None else f"campaign {c.id}"
        record(session, ACTOR, "arena.decision", target, {"campaign_id": c.id, **decision})
        hook = {"campaign_id": c.id, "candidate": cand.version if cand else None, **decision}
        emit(session, "arena.decided", hook, key=f"arena-decided-{c.id}")
        session.flush()
        log.info("arena campaign %s: %s", c.id, why)
        made.append({"campaign_id": c.id, **decision})
    return made


def tick(session: Session, settings: Settings) -> list[int]:
    """Decide what can be decided, then stock campaigns; ids of the battle runs queued."""
    decide(session, settings)
    return stock(session, settings)


def start_gate(session: Session, version_id: int, run_id: int | None) -> ArenaCampaign:
    """A gate campaign for a new candidate against the active policy (the candidate stays
    ready, off /v1, serving only battles until the arena decides)."""
    return arena.create_campaign(session, None, candidate=version_id, run_id=run_id)


def gate_mode(params: dict[str, Any], settings: Settings) -> str:
    """Who promotes a PPO result: `promote_by` param, else PREFLOOP_PROMOTE_BY."""
    from workers.jobs.training import JobParamError

    mode = str(params.get("promote_by") or settings.promote_by)
    if mode not in ("reward", "arena", "both"):
        raise JobParamError("promote_by must be reward, arena or both")
    return mode


def start_arena_gate(ctx: Any, version_id: int, reason: str, mode: str) -> str:
    """Hand a new policy version to the arena instead of activating it; the reason to record."""
    with ctx.session() as session:
        try:
            c = start_gate(session, version_id, ctx.run_id)
        except arena.ArenaError as e:
            ctx.log(f"arena gate not started: {e}")
            return f"{reason}; arena gate not started: {e}"
        cid = c.id
    by = "humans alone decide" if mode == "arena" else "reward gate passed, humans decide"
    ctx.log(f"arena campaign {cid} started: {by}")
    return f"{reason}; waiting on the arena (campaign {cid}: {by})"
