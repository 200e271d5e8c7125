"""A per-process memo of the per-labeler statistics (app.quality.stats.compute), keyed by
everything its result depends on, read fresh from the database on every call:

- the judgments: count, newest id, newest time, the sums of their labeler ids and times spent
  (a new, deleted or re-attributed judgment changes them; judgments are never edited);
- the gold answers: every gold task's id and accepted answers;
- the labelers (ids and names), their skipped / submitted assignment counts and the time each
  flag was last cleared;
- the thresholds, and the database itself.

Those reads are small (one aggregate over the judgments, a few rows per labeler or gold task);
the full pass over every judgment runs only when one of them changed. Exclusions and pauses do
not enter `compute` (the caller adds them fresh). Several processes keep their own memo; each
is right because the key comes from the shared database.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import ComparisonTask, Judgment, TaskStatus

T = TypeVar("T")
SIZE = 4  # results kept (one per database and thresholds in practice)

_lock = threading.Lock()
_memo: OrderedDict[Hashable, Any] = OrderedDict()
hits = misses = 0  # counted for tests and the benchmark


def judgments_key(session: Session) -> tuple[Any, ...]:
    count, newest, at, users, spent = session.execute(
        select(func.count(), func.max(Judgment.id), func.max(Judgment.created_at),
               func.sum(Judgment.user_id), func.sum(Judgment.time_spent_ms))
    ).one()  # fmt: skip
    return (int(count), newest, at.isoformat() if at is not None else None, int(users or 0),
            int(spent or 0))  # fmt: skip


def gold_key(session: Session) -> str:
    rows = session.execute(
        select(ComparisonTask.id, ComparisonTask.gold)
        .where(ComparisonTask.status == TaskStatus.gold)
        .order_by(ComparisonTask.id)
    ).all()
    text = json.dumps([[tid, gold] for tid, gold in rows], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def database(session: Session) -> str:
    return session.get_bind().engine.url.render_as_string(hide_password=True)


def cached(key: Hashable, make: Callable[[], T]) -> T:
    """The memoized result for `key`, made (outside the lock) when absent."""
    global hits, misses
    with _lock:
        if key in _memo:
            _memo.move_to_end(key)
            hits += 1
            return _memo[key]
        misses += 1
    value = make()
    with _lock:
        _memo[key] = value
        while len(_memo) > SIZE:
            _memo.popitem(last=False)
    return value


def clear() -> None:
    with _lock:
        _memo.clear()
