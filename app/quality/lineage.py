"""Lineage: which export snapshots, reward versions and policy versions used a labeler's
judgments.

- Export snapshots record the judgment ids they held as id ranges (`judgment_id_ranges`); older
  snapshots have none and are inferred from their recorded filters and creation time (every
  judgment of the labeler made before the snapshot that passes its labeler and time filters),
  marked "inferred".
- Reward versions record `judgment_id_ranges` in their metrics (the exact training set).
- Policy versions record the reward version they were trained against (`reward_version_id`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import DatasetSnapshot, Judgment, ModelKind, ModelVersion
from app.preferences.pseudonym import labeler_pseudonym


def id_ranges(ids: Iterable[int]) -> list[list[int]]:
    """Ids as sorted inclusive [first, last] runs: an exact, compact record of a dataset."""
    out: list[list[int]] = []
    for i in sorted(set(ids)):
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def in_ranges(ids: list[int], ranges: list[list[int]]) -> int:
    """How many of the sorted `ids` fall inside `ranges` (sorted, disjoint)."""
    n, k = 0, 0
    for i in ids:
        while k < len(ranges) and ranges[k][1] < i:
            k += 1
        if k == len(ranges):
            break
        n += ranges[k][0] <= i
    return n


@dataclass
class Use:
    kind: str  # snapshot | reward | policy
    id: int
    name: str
    created_at: datetime | None
    judgments: int  # of this labeler's judgments
    inferred: bool = False
    via: str | None = None  # policy: the reward version or parent policy it came through
    status: str | None = None


@dataclass
class Lineage:
    snapshots: list[Use] = field(default_factory=list)
    rewards: list[Use] = field(default_factory=list)
    policies: list[Use] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        def one(u: Use) -> dict[str, Any]:
            return {
                "id": u.id,
                "name": u.name,
                "created_at": u.created_at.isoformat() if u.created_at else None,
                "judgments": u.judgments,
                "inferred": u.inferred,
                "via": u.via,
                "status": u.status,
            }

        return {
            "snapshots": [one(u) for u in self.snapshots],
            "reward_versions": [one(u) for u in self.rewards],
            "policy_versions": [one(u) for u in self.policies],
        }


def _inferred_count(
    filters: dict[str, Any], user_id: int, name: str, times: list[datetime], at: datetime
) -> int:
    """The labeler's judgments an old snapshot would have selected (filters and time only)."""
    wanted = filters.get("labelers") or []
    if wanted and name not in wanted and labeler_pseudonym(user_id) not in wanted:
        return 0
    since, until = filters.get("since"), filters.get("until")
    lo = datetime.fromisoformat(since) if since else None
    hi = datetime.fromisoformat(until) if until else None
    return sum(1 for t in times if t <= at and (lo is None or t >= lo) and (hi is None or t < hi))


def of_labeler(session: Session, user_id: int, name: str) -> Lineage:
    """Every snapshot, reward version and policy version that used the labeler's judgments."""
    rows = session.execute(
        select(Judgment.id, Judgment.created_at)
        .where(Judgment.user_id == user_id)
        .order_by(Judgment.id)
    ).all()
    return _lineage(session, [r[0] for r in rows], [r[1] for r in rows], user_id, name)


def of_judgment(session: Session, judgment_id: int) -> Lineage | None:
    """The chain of one judgment: snapshots, reward versions, policy versions (None: no such
    judgment). An imported judgment (no labeler) is matched on recorded id ranges only."""
    from app.models import User

    row = session.execute(
        select(Judgment.id, Judgment.created_at, Judgment.user_id, User.name)
        .outerjoin(User, User.id == Judgment.user_id)
        .where(Judgment.id == judgment_id)
    ).first()
    if row is None:
        return None
    return _lineage(session, [row[0]], [row[1]], row[2], row[3])


def _lineage(
    session: Session, ids: list[int], times: list[datetime], user_id: int | None, name: str | None
) -> Lineage:
    out = Lineage()
    if not ids:
        return out
    for snap in session.scalars(select(DatasetSnapshot).order_by(DatasetSnapshot.id)):
        if snap.judgment_id_ranges is not None:
            n, inferred = in_ranges(ids, snap.judgment_id_ranges), False
        elif snap.sha256 is None:
            continue  # never finished
        elif user_id is None or name is None:
            continue  # an imported judgment: only recorded ranges tell
        else:
            n = _inferred_count(snap.filters or {}, user_id, name, times, snap.created_at)
            inferred = True
        if n:
            label = f"snapshot {snap.id} ({snap.shape}, {snap.format})"
            out.snapshots.append(Use("snapshot", snap.id, label, snap.created_at, n, inferred))
    rewards: dict[int, Use] = {}
    versions = list(session.scalars(select(ModelVersion).order_by(ModelVersion.id)))
    for mv in versions:
        if mv.kind != ModelKind.reward:
            continue
        ranges = (mv.metrics or {}).get("judgment_id_ranges")
        if not isinstance(ranges, list):
            continue
        n = in_ranges(ids, ranges)
        if n:
            use = Use("reward", mv.id, mv.version, mv.created_at, n, status=str(mv.status))
            rewards[mv.id] = use
            out.rewards.append(use)
    policies: dict[int, Use] = {}
    for mv in versions:  # id order: a parent comes before its children
        if mv.kind != ModelKind.policy:
            continue
        found = _policy_use(mv, ids, rewards, policies)
        if found is not None:
            policies[mv.id] = found
            out.policies.append(found)
    return out


def _policy_use(
    mv: ModelVersion, ids: list[int], rewards: dict[int, Use], policies: dict[int, Use]
) -> Use | None:
    """How a policy version used the judgments: dpo trained on their pairs (it records them;
    its reward model only gated it), ppo/rloo/grpo against a reward model that used them, and
    any algorithm from a parent policy that did."""
    metrics = mv.metrics or {}
    ranges, rid = metrics.get("judgment_id_ranges"), metrics.get("reward_version_id")
    n, via = 0, None
    if isinstance(ranges, list):
        n = in_ranges(ids, ranges)
    elif isinstance(rid, int) and rid in rewards:
        n, via = rewards[rid].judgments, rewards[rid].name
    if not n and mv.parent_id in policies:
        n, via = policies[mv.parent_id].judgments, policies[mv.parent_id].name
    if not n:
        return None
    return Use("policy", mv.id, mv.version, mv.created_at, n, via=via, status=str(mv.status))
