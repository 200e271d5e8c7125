"""Arena campaigns and what their battles say: start/stop campaigns, read battle outcomes from
judgments, the leaderboard, and the promotion gate's verdict for a candidate.

A battle is a K=2 task; each judgment on it is one outcome (A won, B won, or a tie / both bad:
half a win each). Battles are also ordinary preference data: nothing here changes the judgments.
Votes of excluded labelers (app.quality) count neither in the ratings nor in the gate.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.arena import ratings
from app.models import (
    ArenaCampaign,
    Battle,
    CampaignStatus,
    ComparisonTask,
    Judgment,
    LabelerExclusion,
    ModelKind,
    ModelStatus,
    ModelVersion,
    TaskStatus,
    utcnow,
)
from app.models_registry import service as registry
from ml.limits import INT32_MAX

MAX_VERSIONS = 8
BATTLEABLE = {ModelStatus.ready, ModelStatus.active, ModelStatus.retired}


class ArenaError(ValueError):
    """A campaign request that cannot be honoured (shown to the user as is, with `status`)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class CampaignNotFound(ArenaError):
    def __init__(self, message: str) -> None:
        super().__init__(message, 404)


def outcome(ranking: list[Any], a: int, b: int) -> float | None:
    """Score of A from a K=2 ranking (groups of completion ids, best first); None if it does not
    rank exactly these two."""
    flat = sorted(c for g in ranking for c in g)
    if flat != sorted((a, b)):
        return None
    first = ranking[0]
    if len(first) == 2:
        return 0.5
    return 1.0 if first[0] == a else 0.0


def counted() -> Any:
    """The judgments that count as votes: not excluded, and not by a labeler with an open
    exclusion (a vote that slipped in after it). Undoing the exclusion brings them back."""
    barred = select(LabelerExclusion.user_id).where(LabelerExclusion.undone_at.is_(None))
    return and_(
        Judgment.excluded.is_(False),
        or_(Judgment.user_id.is_(None), Judgment.user_id.not_in(barred)),
    )


def outcomes(session: Session, campaign_id: int | None = None) -> list[ratings.Outcome]:
    """Every counted vote on a battle as (model_a, model_b, score of a), oldest first."""
    q = (
        select(Battle.model_a, Battle.model_b, Battle.completion_a_id, Battle.completion_b_id,
               Judgment.ranking)
        .join(Judgment, Judgment.task_id == Battle.task_id)
        .where(counted())
        .order_by(Judgment.id)
    )  # fmt: skip
    if campaign_id is not None:
        q = q.where(Battle.campaign_id == campaign_id)
    out = []
    for ma, mb, ca, cb, ranking in session.execute(q):
        s = outcome(ranking or [], ca, cb)
        if s is not None:
            out.append((ma, mb, s))
    return out


def _versions(session: Session, refs: list[Any]) -> list[ModelVersion]:
    out: list[ModelVersion] = []
    for ref in refs:
        try:
            mv = registry.get_version(session, ref)
        except registry.VersionNotFound as e:
            raise ArenaError(str(e), 404) from None
        if mv.kind != ModelKind.policy or mv.status not in BATTLEABLE:
            raise ArenaError(f"version {mv.version} is a {mv.kind.value} {mv.status.value}")
        if mv.id not in {v.id for v in out}:
            out.append(mv)
    return out


def create_campaign(
    session: Session,
    versions: list[Any] | None,
    name: str = "",
    target_battles: int = 0,
    user_id: int | None = None,
    candidate: Any = None,
    run_id: int | None = None,
) -> ArenaCampaign:
    """A campaign between `versions`, or (gate) between the active policy and `candidate`."""
    purpose = "manual"
    baseline_id = candidate_id = None
    if candidate is not None:
        active = registry.active_version(session, ModelKind.policy)
        if active is None:
            raise ArenaError("no active policy to battle against")
        cand = _versions(session, [candidate])[0]
        if cand.id == active.id:
            raise ArenaError(f"version {cand.version} is already the active policy")
        chosen = [active, cand]
        purpose, baseline_id, candidate_id = "gate", active.id, cand.id
    else:
        if not versions:
            active = registry.active_version(session, ModelKind.policy)
            newest = session.scalar(
                select(ModelVersion)
                .where(ModelVersion.kind == ModelKind.policy,
                       ModelVersion.status == ModelStatus.ready)
                .order_by(ModelVersion.id.desc()).limit(1)
            )  # fmt: skip
            if active is None or newest is None:
                raise ArenaError("name the versions: there is no active policy and ready candidate")
            versions = [active.id, newest.id]
        chosen = _versions(session, versions)
    if not 2 <= len(chosen) <= MAX_VERSIONS:
        raise ArenaError(f"a campaign needs 2 to {MAX_VERSIONS} distinct policy versions", 422)
    if not 0 <= target_battles <= 100_000:
        raise ArenaError("target_battles must be between 0 (no limit) and 100000", 422)
    c = ArenaCampaign(
        name=(name or " vs ".join(v.version for v in chosen))[:200],
        version_ids=[v.id for v in chosen],
        purpose=purpose,
        candidate_id=candidate_id,
        baseline_id=baseline_id,
        target_battles=target_battles,
        run_id=run_id,
        created_by_id=user_id,
    )
    session.add(c)
    session.flush()
    return c


def get_campaign(session: Session, campaign_id: int) -> ArenaCampaign:
    c = session.get(ArenaCampaign, campaign_id) if 1 <= campaign_id <= INT32_MAX else None
    if c is None:
        raise CampaignNotFound(f"no arena campaign {campaign_id}")
    return c


def stop_campaign(session: Session, campaign_id: int) -> ArenaCampaign:
    """Stop making battles (open battle tasks stay labelable; their judgments still count)."""
    c = get_campaign(session, campaign_id)
    if c.status == CampaignStatus.active:
        c.status = CampaignStatus.stopped
        c.finished_at = utcnow()
        session.flush()
    return c


def audit(session: Session, actor: Any, action: str, c: ArenaCampaign, ip: str | None) -> None:
    """Record a campaign start/stop in the audit trail (with the caller's transaction)."""
    from app.audit import record

    details = {"campaign_id": c.id, "versions": list(c.version_ids), "purpose": c.purpose,
               "target_battles": c.target_battles, "status": c.status.value}  # fmt: skip
    record(session, actor, action, c.name, details, ip)


def battle_counts(session: Session) -> dict[int, dict[str, int]]:
    """Per campaign: battles made, still open, and judgments on them."""
    made = session.execute(
        select(Battle.campaign_id, ComparisonTask.status, func.count(),
               func.sum(ComparisonTask.judgment_count))
        .join(ComparisonTask, ComparisonTask.id == Battle.task_id)
        .where(Battle.campaign_id.is_not(None))
        .group_by(Battle.campaign_id, ComparisonTask.status)
    )  # fmt: skip
    out: dict[int, dict[str, int]] = {}
    for cid, status, n, judged in made:
        if cid is None:
            continue
        d = out.setdefault(cid, {"battles": 0, "open": 0, "judged": 0})
        d["battles"] += n
        d["judged"] += int(judged or 0)
        if status == TaskStatus.open:
            d["open"] += n
    return out


def campaign_view(c: ArenaCampaign, names: dict[int, str], counts: dict[str, int]) -> dict:
    return {
        "id": c.id,
        "name": c.name,
        "status": c.status.value,
        "purpose": c.purpose,
        "versions": [names.get(v, str(v)) for v in c.version_ids],
        "candidate": names.get(c.candidate_id) if c.candidate_id else None,
        "baseline": names.get(c.baseline_id) if c.baseline_id else None,
        "target_battles": c.target_battles,
        "battles": counts.get("battles", 0),
        "open_battles": counts.get("open", 0),
        "judged": counts.get("judged", 0),
        "decision": c.decision,
        "run_id": c.run_id,
        "created_at": c.created_at.isoformat(),
        "finished_at": c.finished_at.isoformat() if c.finished_at else None,
    }


def list_campaigns(session: Session, limit: int = 50) -> list[dict]:
    cs = list(session.scalars(select(ArenaCampaign).order_by(ArenaCampaign.id.desc()).limit(limit)))
    ids = {v for c in cs for v in [*c.version_ids, c.candidate_id, c.baseline_id] if v}
    q = select(ModelVersion.id, ModelVersion.version).where(ModelVersion.id.in_(ids))
    names: dict[int, str] = {i: v for i, v in session.execute(q)}
    counts = battle_counts(session)
    return [campaign_view(c, names, counts.get(c.id, {})) for c in cs]


def board(session: Session, rounds: int = 200) -> dict[str, Any]:
    """The leaderboard (Bradley-Terry with bootstrap 95% intervals, best first) and the win rate
    of every pair that battled, with Wilson 95% intervals."""
    outs = outcomes(session)
    rows = ratings.leaderboard(outs, rounds=rounds, seed=0)
    return {
        "battles": len(outs),
        "ratings": [asdict(r) for r in rows],
        "pairs": [asdict(p) for p in ratings.pair_rates(outs)],
        "method": "Bradley-Terry (ties and both-bad: half a win each), Elo scale (mean 1000); "
        f"bootstrap 95% intervals over {rounds} resamples; pair win rates with Wilson 95% "
        "intervals",
    }


def gate_verdict(
    session: Session, campaign: ArenaCampaign, min_battles: int, max_battles: int
) -> tuple[str, ratings.PairRate]:
    """The gate's verdict for a gate campaign's candidate against its baseline."""
    q = select(ModelVersion.id, ModelVersion.version).where(
        ModelVersion.id.in_([campaign.candidate_id, campaign.baseline_id])
    )
    names: dict[int, str] = {i: v for i, v in session.execute(q)}
    cand, base = names.get(campaign.candidate_id or 0), names.get(campaign.baseline_id or 0)
    rate = ratings.win_rate(outcomes(session, campaign.id), cand or "", base or "")
    return ratings.gate(rate, min_battles, max_battles), rate


def page_view(session: Session, width: float = 520.0) -> dict[str, Any]:
    """What /admin/models shows: the board with x positions for the interval bars, the pairs
    (0.5 at the centre of their bar), the campaigns and the versions one may pit."""
    data = board(session)
    rows = data["ratings"]
    if rows:
        lo = min(r["lower"] for r in rows)
        hi = max(r["upper"] for r in rows)
        pad = max((hi - lo) * 0.08, 10.0)
        lo, hi = lo - pad, hi + pad
        for r in rows:
            for key in ("rating", "lower", "upper"):
                r[f"x_{key}"] = round((r[key] - lo) / (hi - lo) * width, 1)
        mid = (ratings.BASE - lo) / (hi - lo) * width
        data["axis"] = {"lo": round(lo), "hi": round(hi), "mid_x": round(mid, 1)}
    for p in data["pairs"]:
        for key in ("win_rate", "lower", "upper"):
            p[f"x_{key}"] = round(p[key] * 200, 1)
    data["width"] = width
    data["campaigns"] = list_campaigns(session)
    data["versions"] = [
        {"id": v.id, "version": v.version, "status": v.status.value}
        for v in registry.list_versions(session, ModelKind.policy, 50)
        if v.status in BATTLEABLE
    ]
    return data
