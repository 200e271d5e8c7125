"""Labeler quality actions: gold tasks, pause, clear flag, exclusion (and its undo), the
labeler-facing gold accuracy switch. Sync; takes a session and only flushes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from app.models import (
    AppSetting,
    Assignment,
    AssignmentStatus,
    ComparisonTask,
    Judgment,
    LabelerExclusion,
    LabelerState,
    Role,
    RunKind,
    TaskCandidate,
    TaskStatus,
    User,
    utcnow,
)
from app.quality.gold import GoldError, GoldIn, accepted

SHOW_GOLD_KEY = "quality.show_gold_accuracy"


class QualityError(ValueError):
    """A request that conflicts with the current state (HTTP 409)."""


class NotFound(LookupError):
    """No such task or labeler (HTTP 404)."""


__all__ = ["GoldError", "NotFound", "QualityError"]


def candidate_ids(session: Session, task_id: int) -> list[int]:
    """The task's completion ids in canonical order."""
    return list(
        session.scalars(
            select(TaskCandidate.completion_id)
            .where(TaskCandidate.task_id == task_id)
            .order_by(TaskCandidate.position)
        )
    )


def audit(
    session: Session, actor: Any, action: str, target: str, details: Any = None, ip: Any = None
) -> None:
    """One audit-log entry in the action's own transaction (actor None: the command line)."""
    from app.audit import record

    record(session, actor, action, target, details or {}, ip)


def _actor_id(actor: Any) -> int | None:
    if actor is None or isinstance(actor, str):
        return None
    return getattr(actor, "user_id", None) or getattr(actor, "id", None)


def set_gold(
    session: Session, task_id: int, gold: GoldIn, actor: Any = None, ip: str | None = None
) -> ComparisonTask:
    """Make a task gold with its accepted answer(s); it leaves the open queue for the gold mix."""
    task = session.get(ComparisonTask, task_id, with_for_update=True)
    if task is None:
        raise NotFound(f"task {task_id} does not exist")
    task.gold = accepted(gold, candidate_ids(session, task_id))
    task.status = TaskStatus.gold
    audit(session, actor, "gold.set", f"task {task_id}", {"accept": task.gold["accept"]}, ip)
    session.flush()
    return task


def unset_gold(
    session: Session, task_id: int, actor: Any = None, ip: str | None = None
) -> ComparisonTask:
    """Return a gold task to the ordinary queue (open or complete by its judgment count)."""
    task = session.get(ComparisonTask, task_id, with_for_update=True)
    if task is None:
        raise NotFound(f"task {task_id} does not exist")
    if task.status != TaskStatus.gold:
        raise QualityError(f"task {task_id} is not a gold task")
    task.gold = None
    done = task.judgment_count >= task.required_judgments
    task.status = TaskStatus.complete if done else TaskStatus.open
    audit(session, actor, "gold.unset", f"task {task_id}", {}, ip)
    session.flush()
    return task


def labeler(session: Session, ref: int | str) -> User:
    """A labeler by id or name."""
    q = select(User).where(User.id == ref if isinstance(ref, int) else User.name == ref)
    user = session.scalar(q)
    if user is None or user.role != Role.labeler:
        raise NotFound(f"labeler {ref!r} does not exist")
    return user


def state(session: Session, user_id: int) -> LabelerState:
    st = session.get(LabelerState, user_id, with_for_update=True)
    if st is None:
        st = LabelerState(user_id=user_id, paused=False)
        session.add(st)
        session.flush()
    return st


def set_paused(session: Session, user_id: int, paused: bool) -> LabelerState:
    """Paused labelers get no new tasks (their live lease stays theirs until it expires)."""
    st = state(session, user_id)
    st.paused = paused
    session.flush()
    return st


def clear_flag(session: Session, user_id: int) -> LabelerState:
    """Flags are recomputed only from judgments made after this moment."""
    st = state(session, user_id)
    st.flag_cleared_at = utcnow()
    session.flush()
    return st


def act(session: Session, user_id: int, action: str, actor: Any = None, ip: Any = None) -> None:
    """pause | resume | clear-flag, recorded in the audit log."""
    if action in ("pause", "resume"):
        set_paused(session, user_id, action == "pause")
    elif action == "clear-flag":
        clear_flag(session, user_id)
    else:
        raise NotFound(f"no action {action!r}")
    name = session.scalar(select(User.name).where(User.id == user_id))
    audit(session, actor, f"labeler.{action.replace('-', '_')}", f"labeler {name}", {}, ip)


@dataclass
class ExclusionResult:
    exclusion: LabelerExclusion
    judgments: int
    reward_run_id: int | None


def exclude(
    session: Session,
    user_id: int,
    actor: Any,
    retrain: bool,
    then_policy: bool = True,
    reward_params: dict[str, Any] | None = None,
    ip: str | None = None,
) -> ExclusionResult:
    """Mark every judgment of the labeler excluded, pause them and take back their live leases;
    with `retrain`, queue a reward run on the data without them (and, with `then_policy`, the
    policy run of PREFLOOP_POLICY_ALGORITHM after it: workers.scheduler)."""
    from app.runs.service import create_run

    actor_id = _actor_id(actor)
    open_ = session.scalar(
        select(LabelerExclusion)
        .where(LabelerExclusion.user_id == user_id, LabelerExclusion.undone_at.is_(None))
        .limit(1)
    )
    if open_ is not None:
        raise QualityError(f"labeler {user_id} is already excluded (exclusion {open_.id})")
    result = session.execute(
        update(Judgment)
        .where(Judgment.user_id == user_id, Judgment.excluded.is_(False))
        .values(excluded=True)
    )
    n = getattr(result, "rowcount", 0)
    _recount(session, user_id, excluded=True)
    set_paused(session, user_id, True)
    # unlike a pause, an exclusion takes back live leases: a judgment submitted on one later
    # would not be marked excluded (the submit is refused as "not assigned")
    session.execute(
        delete(Assignment).where(
            Assignment.user_id == user_id, Assignment.status == AssignmentStatus.active
        )
    )
    ex = LabelerExclusion(user_id=user_id, judgment_count=int(n or 0), created_by_id=actor_id)
    session.add(ex)
    session.flush()
    run_id = None
    if retrain:
        params: dict[str, Any] = {
            **(reward_params or {}),
            "trigger": f"labeler {user_id} excluded (exclusion {ex.id})",
            "exclusion_id": ex.id,
            "then_policy": then_policy,
        }
        run_id = create_run(session, RunKind.reward, params, actor_id).id
        ex.reward_run_id = run_id
        session.flush()
    name = session.scalar(select(User.name).where(User.id == user_id))
    details = {"exclusion_id": ex.id, "judgments": ex.judgment_count, "reward_run_id": run_id}
    audit(session, actor, "labeler.exclude", f"labeler {name}", details, ip)
    return ExclusionResult(ex, int(n or 0), run_id)


def _recount(session: Session, user_id: int, excluded: bool) -> None:
    """Excluded judgments stop counting toward their tasks' required judgments, so the tasks
    reopen for other labelers; undoing counts them again. Call with the judgments marked
    excluded (before undo clears them)."""
    mine = (
        select(func.count())
        .where(
            Judgment.task_id == ComparisonTask.id,
            Judgment.user_id == user_id,
            Judgment.excluded.is_(True),
        )
        .scalar_subquery()
    )
    tasks = select(Judgment.task_id).where(Judgment.user_id == user_id, Judgment.excluded.is_(True))
    count = ComparisonTask.judgment_count + (mine if not excluded else -mine)
    session.execute(
        update(ComparisonTask)
        .where(ComparisonTask.id.in_(tasks), ComparisonTask.status != TaskStatus.gold)
        .values(judgment_count=count)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(ComparisonTask)
        .where(ComparisonTask.id.in_(tasks), ComparisonTask.status != TaskStatus.gold)
        .values(
            status=case(
                (ComparisonTask.judgment_count >= ComparisonTask.required_judgments,
                 TaskStatus.complete.value),
                else_=TaskStatus.open.value,
            )
        )
        .execution_options(synchronize_session=False)
    )  # fmt: skip


def undo_exclusion(
    session: Session, user_id: int, actor: Any, ip: str | None = None
) -> LabelerExclusion:
    """Bring the labeler's judgments back into training; recorded on the exclusion."""
    ex = session.scalar(
        select(LabelerExclusion)
        .where(LabelerExclusion.user_id == user_id, LabelerExclusion.undone_at.is_(None))
        .with_for_update()
        .limit(1)
    )
    if ex is None:
        raise QualityError(f"labeler {user_id} is not excluded")
    _recount(session, user_id, excluded=False)
    session.execute(update(Judgment).where(Judgment.user_id == user_id).values(excluded=False))
    ex.undone_at, ex.undone_by_id = utcnow(), _actor_id(actor)
    set_paused(session, user_id, False)  # the exclusion paused them
    name = session.scalar(select(User.name).where(User.id == user_id))
    details = {"exclusion_id": ex.id, "judgments": ex.judgment_count}
    audit(session, actor, "labeler.include", f"labeler {name}", details, ip)
    session.flush()
    return ex


def exclusions(session: Session, user_id: int) -> list[LabelerExclusion]:
    return list(
        session.scalars(
            select(LabelerExclusion)
            .where(LabelerExclusion.user_id == user_id)
            .order_by(LabelerExclusion.id.desc())
        )
    )


def excluded_count(session: Session, user_id: int) -> int:
    q = select(func.count()).where(Judgment.user_id == user_id, Judgment.excluded.is_(True))
    return int(session.scalar(q) or 0)


def show_gold_accuracy(session: Session) -> bool:
    row = session.get(AppSetting, SHOW_GOLD_KEY)
    return row is not None and row.value == "1"


def set_show_gold_accuracy(
    session: Session, on: bool, actor: Any = None, ip: str | None = None
) -> None:
    row = session.get(AppSetting, SHOW_GOLD_KEY)
    if row is None:
        session.add(AppSetting(key=SHOW_GOLD_KEY, value="1" if on else "0"))
    else:
        row.value = "1" if on else "0"
    audit(session, actor, "quality.settings", "show_gold_accuracy", {"show_gold_accuracy": on}, ip)
    session.flush()


def labeler_stats(session: Session, th: Any = None) -> dict[int, Any]:
    """Statistics and flags of every labeler (app.quality.stats), from one pass over the
    judgments, memoized while nothing they depend on changed (app.quality.memo); memory grows
    with the number of judgments (fine up to a few million). Callers may not mutate them."""
    from dataclasses import replace

    from app.config import get_settings
    from app.quality import memo
    from app.quality.stats import Thresholds, compute

    th = th or Thresholds.from_settings(get_settings())
    names = dict(session.execute(select(User.id, User.name).where(User.role == Role.labeler)).all())
    skips: dict[int, list[int]] = {}
    for uid, status, n in session.execute(
        select(Assignment.user_id, Assignment.status, func.count())
        .where(Assignment.status.in_([AssignmentStatus.skipped, AssignmentStatus.submitted]))
        .group_by(Assignment.user_id, Assignment.status)
    ):
        skips.setdefault(uid, [0, 0])[0 if status == AssignmentStatus.skipped else 1] = int(n)
    states = {st.user_id: st for st in session.scalars(select(LabelerState))}
    cleared = {uid: st.flag_cleared_at for uid, st in states.items()}
    key = (
        memo.database(session),
        th,
        tuple(sorted(names.items())),
        tuple(sorted((k, *v) for k, v in skips.items())),
        tuple(sorted((k, v.isoformat() if v else None) for k, v in cleared.items())),
        memo.judgments_key(session),
        memo.gold_key(session),
    )
    skip_pairs = {k: (v[0], v[1]) for k, v in skips.items()}
    base = memo.cached(key, lambda: compute(_facts(session), names, th, skip_pairs, cleared))
    excluded = dict(
        session.execute(
            select(Judgment.user_id, func.count())
            .where(Judgment.excluded.is_(True))
            .group_by(Judgment.user_id)
        ).all()
    )
    out = {}
    for uid, st in base.items():
        out[uid] = replace(
            st,
            paused=bool(states[uid].paused) if uid in states else False,
            excluded=int(excluded.get(uid, 0)),
        )
    return out


def _facts(session: Session) -> Iterator[Any]:
    """Every judgment as a statistics Fact, ordered by task."""
    from app.quality.stats import Fact

    rows = session.execute(
        select(
            Judgment.id, Judgment.user_id, Judgment.source, Judgment.task_id, Judgment.ranking,
            Judgment.choice, Judgment.shown_order, Judgment.time_spent_ms, Judgment.created_at,
            ComparisonTask.gold,
        )
        .join(ComparisonTask, ComparisonTask.id == Judgment.task_id)
        .order_by(Judgment.task_id, Judgment.id)
    )  # fmt: skip
    for jid, uid, src, tid, rk, ch, order, spent, created, gold in rows:
        coder = f"u{uid}" if uid is not None else f"source:{src}"
        yield Fact(jid, uid, coder, tid, rk or [], ch, order, spent, created, gold)


def own_gold_accuracy(session: Session, user_id: int) -> tuple[int, int]:
    """(correct, answered) gold answers of one labeler."""
    from app.quality.gold import is_correct

    rows = session.execute(
        select(Judgment.ranking, ComparisonTask.gold)
        .join(ComparisonTask, ComparisonTask.id == Judgment.task_id)
        .where(Judgment.user_id == user_id, ComparisonTask.status == TaskStatus.gold)
    ).all()
    return sum(bool(is_correct(g, r or [])) for r, g in rows), len(rows)
