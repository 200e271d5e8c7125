"""The per-labeler statistics are memoized (app.quality.memo), yet every change shows at once:
a new judgment, an exclusion and its undo, a pause, gold set or removed, a cleared flag, other
thresholds, a skip; through the service and through /admin/labelers and the API."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.db import session_scope
from app.models import Assignment, AssignmentStatus, ComparisonTask, Judgment, utcnow
from app.quality import memo, service
from app.quality.gold import GoldIn
from app.quality.stats import Thresholds
from tests.exports.helpers import candidates
from tests.factories import auth, make_tasks, make_user
from tests.quality.test_labelers import EVIL, _crowd

TH = Thresholds(min_gold_count=5, min_overlap=10, min_position_n=20, max_position_p=0.001)


def _stats(th: Thresholds = TH) -> dict:
    with session_scope() as s:
        return service.labeler_stats(s, th)


def _computes(th: Thresholds = TH) -> int:
    """How many full computations one call made (0: served from the memo)."""
    before = memo.misses
    _stats(th)
    return memo.misses - before


def test_every_change_shows_at_once():
    ids = _crowd()
    bad, good = ids[EVIL], ids["good1"]
    first = _stats()
    assert _computes() == 0  # nothing changed: served from the memo
    assert _stats()[bad].as_dict() == first[bad].as_dict()
    # a new judgment
    (t,) = make_tasks(1, required=3, prefix="late")
    a, b = candidates(t)
    with session_scope() as s:
        s.add(Judgment(task_id=t, user_id=good, ranking=[[a], [b]], shown_order=[a, b],
                       time_spent_ms=100, created_at=utcnow()))  # fmt: skip
    assert _stats()[good].all.judgments == first[good].all.judgments + 1
    # exclusion (pauses) and its undo
    with session_scope() as s:
        service.exclude(s, bad, None, retrain=False)
    st = _stats()[bad]
    assert st.excluded == 24 and st.paused
    with session_scope() as s:
        service.undo_exclusion(s, bad, None)
    st = _stats()[bad]
    assert st.excluded == 0 and not st.paused
    # the memo's copy is never changed by what a caller got
    assert first[bad].excluded == 0 and _stats()[bad].paused is False
    # gold set and removed
    with session_scope() as s:
        other = s.scalar(
            select(ComparisonTask.id)
            .where(ComparisonTask.status != "gold", ComparisonTask.id != t)
            .order_by(ComparisonTask.id)
        )
        service.set_gold(s, other, GoldIn(choice="a"))
    assert _stats()[good].all.gold_n == 6
    with session_scope() as s:
        service.set_gold(s, other, GoldIn(choice="b"))  # another answer, same gold task
    assert _stats()[good].all.gold_correct == 5
    with session_scope() as s:
        service.unset_gold(s, other)
    assert _stats()[good].all.gold_n == 5
    # thresholds
    assert "fast" in _stats()[bad].flags
    assert "fast" not in _stats(Thresholds(**{**TH.__dict__, "fast_ms": 100}))[bad].flags
    # a cleared flag
    with session_scope() as s:
        service.clear_flag(s, bad)
    assert _stats()[bad].flags == []
    # a skip
    with session_scope() as s:
        s.add(Assignment(task_id=t, user_id=bad, shown_order=[a, b],
                         status=AssignmentStatus.skipped, leased_at=utcnow(),
                         expires_at=utcnow() + timedelta(minutes=5)))  # fmt: skip
    assert _stats()[bad].skipped == 1
    assert _computes() == 0


def test_pages_and_api_show_a_new_judgment_at_once(client):
    ids = _crowd()
    h = auth(make_user("root", "admin"))
    good = ids["good1"]

    def shown() -> tuple[int, int]:
        api = client.get(f"/api/v1/labelers/{good}", headers=h).json()["judgments"]
        page = client.get(f"/admin/labelers/{good}", headers=h)
        assert page.status_code == 200 and client.get("/admin/labelers", headers=h).is_success
        return api, page.text.count("<svg")

    before = shown()
    assert before[0] == 24
    (t,) = make_tasks(1, required=3, prefix="late")
    a, b = candidates(t)
    with session_scope() as s:
        s.add(Judgment(task_id=t, user_id=good, ranking=[[a], [b]], created_at=utcnow()))
    assert shown()[0] == 25
    misses = memo.misses
    shown()
    assert memo.misses == misses  # unchanged data: three views, no recomputation
