"""PostgreSQL: a lease committed after another labeler's NEXT statement took its snapshot is not
overfilled. The statement reads one snapshot; the fresh-version check makes it pass over a task
leased meanwhile. Deterministic: the second statement is held on an advisory lock between its
snapshot and its scan, while the first lease commits."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select

from app.db import labeling_pool, session_scope
from app.labeling import rules, sql
from app.models import Assignment, User, utcnow
from tests.conftest import IS_PG
from tests.factories import make_tasks, make_user

pytestmark = pytest.mark.skipif(not IS_PG, reason="row locks and snapshots: PostgreSQL only")

GATE = 4242
GATED = [*rules.ELIGIBLE, f"(SELECT count(*) FROM pg_advisory_lock_shared({GATE})) = 1"]


def _conn() -> psycopg.Connection:
    from app.config import get_settings

    info = labeling_pool(get_settings()).conninfo
    return psycopg.connect(info, autocommit=True, cursor_factory=psycopg.RawCursor)


def _params(uid: int) -> dict[str, Any]:
    now = utcnow()
    return {"uid": uid, "av": 0, "now": now, "expires": now + timedelta(minutes=10), "gold": False}


def _race(fresh_check: bool) -> tuple[Any, Any]:
    """alice's lease commits while bob's statement waits between its snapshot and its scan."""
    make_user("alice")
    make_user("bob")
    make_tasks(2, required=1)
    with session_scope() as s:
        ids = dict(s.execute(select(User.name, User.id)).all())
    gated, names = sql.to_psycopg(sql.pg_next(GATED, fresh_check=fresh_check))
    result: dict[str, Any] = {}
    with _conn() as gate, _conn() as bob, _conn() as alice:
        gate.execute("SELECT pg_advisory_lock($1)", [GATE])
        bob_pid = bob.info.backend_pid

        def run_bob() -> None:
            params = _params(ids["bob"])
            result["bob"] = bob.execute(gated, [params[n] for n in names]).fetchone()

        thread = threading.Thread(target=run_bob)
        thread.start()
        deadline = time.monotonic() + 30
        while True:  # wait until bob's statement is blocked on the gate (a condition, not a nap)
            row = gate.execute(
                "SELECT wait_event FROM pg_stat_activity WHERE pid = $1", [bob_pid]
            ).fetchone()
            if row and row[0] == "advisory":
                break
            assert time.monotonic() < deadline, "bob's statement never reached the gate"
            time.sleep(0.01)
        statement, names = sql.PG["next"]
        params = _params(ids["alice"])
        alice_row = alice.execute(statement, [params[n] for n in names]).fetchone()
        gate.execute("SELECT pg_advisory_unlock($1)", [GATE])
        thread.join(30)
    return alice_row, result["bob"]


def test_a_lease_committed_after_the_snapshot_is_not_overfilled():
    alice, bob = _race(fresh_check=True)
    assert alice[1] == 1  # alice leased task 1 (the first in queue order)
    assert bob[1] == 2, "bob must be passed over task 1, which alice leased meanwhile"
    with session_scope() as s:
        q = select(Assignment.task_id, func.count()).group_by(Assignment.task_id)
        per_task = {task: n for task, n in s.execute(q)}
    assert per_task == {1: 1, 2: 1}


def test_without_the_check_the_stale_snapshot_would_overfill():
    """The control: the same race with the check removed leases task 1 twice."""
    alice, bob = _race(fresh_check=False)
    assert alice[1] == 1 and bob[1] == 1
