"""The assignment rules, written once as SQL fragments that both backends' statements use.

A labeler is offered an open task
- that they have not judged or skipped,
- whose judgments plus other labelers' live (unexpired, active) leases do not yet cover its
  required judgments,
in queue order: closest to its required judgments first, then highest priority (the reward
model's uncertainty about the pair, set by the generate job; arena battles), then oldest, then
lowest id (the partial index ix_comparison_tasks_queue walks exactly this order).

A labeler holding a live lease on an open task gets that task back (oldest lease first).

Fragments refer to the task as `t`, to the labeler as `:uid` and to the request's clock as
`:now`. To add a rule, append a predicate to ELIGIBLE (or a term to ORDER_BY): app.labeling.sql
composes the PostgreSQL and SQLite statements from these lists, and every statement picks it up.
Each predicate must be cheap per scanned task: the queue scan evaluates it for every task it
passes over (bench/labeling/inprocess.py measures the cost).
"""

from __future__ import annotations

ELIGIBLE: list[str] = [
    "t.status = 'open'",
    # never a task the labeler already judged or skipped
    """NOT EXISTS (
        SELECT 1 FROM assignments d
        WHERE d.task_id = t.id AND d.user_id = :uid AND d.status IN ('submitted', 'skipped'))""",
    # judgments + other labelers' live leases must leave room for one more
    """t.judgment_count + (
        SELECT count(*) FROM assignments l
        WHERE l.task_id = t.id AND l.status = 'active' AND l.expires_at > :now
          AND l.user_id <> :uid) < t.required_judgments""",
]

ORDER_BY: list[str] = [
    "t.required_judgments - t.judgment_count",
    "t.priority DESC",  # most uncertain first within equal remaining counts
    "t.created_at",
    "t.id",
]

# the labeler's live lease on an open task, if any (a = assignments, t = its task)
HELD: list[str] = [
    "a.user_id = :uid",
    "a.status = 'active'",
    "a.expires_at > :now",
    "t.status = 'open'",
]
HELD_ORDER_BY = "a.leased_at"


def where(predicates: list[str]) -> str:
    return "\n    AND ".join(f"({p})" for p in predicates)


def order_by() -> str:
    return ", ".join(ORDER_BY)
