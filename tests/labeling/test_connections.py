"""Connection handling of the hot path: the budget split over `serve --workers N`, and a stuck
statement cut by its timeout (503 with Retry-After, nothing stored) instead of holding a worker."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.config import Settings, get_settings
from app.db import labeling_pool, session_scope, web_pools
from app.models import Judgment
from tests.conftest import IS_PG
from tests.factories import auth, make_tasks, make_user


@pytest.mark.parametrize(
    ("budget", "workers", "general", "labeling"),
    [(40, 1, 32, 8), (40, 2, 15, 5), (40, 8, 3, 2), (40, 32, 2, 2), (200, 32, 4, 2)],
)
def test_the_connection_budget_is_split_over_the_workers(budget, workers, general, labeling):
    pools = web_pools(Settings(db_max_connections=budget, web_workers=workers))
    assert (pools.general, pools.labeling) == (general, labeling)
    # every worker gets at least 2 + 2; within budget whenever the budget allows 4 per worker
    assert pools.general >= 2 and pools.labeling >= 2
    if budget >= 4 * workers:
        assert workers * (pools.general + pools.labeling) <= budget


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PREFLOOP_LABELING_STATEMENT_TIMEOUT_MS", "300")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.skipif(not IS_PG, reason="statement_timeout is PostgreSQL's")
def test_a_stuck_statement_is_cut_by_its_timeout(short_timeout):
    from app.main import create_app

    alice = make_user("alice")
    (task_id,) = make_tasks(1)
    with TestClient(create_app()) as client:
        task = client.get("/api/v1/tasks/next", headers=auth(alice)).json()
        body = {"ranking": [[c["id"]] for c in task["candidates"]]}
        # another transaction holds the task row: the submit's lock wait would never end
        with psycopg.connect(labeling_pool(get_settings()).conninfo) as holder:
            holder.execute("SELECT 1 FROM comparison_tasks WHERE id = %s FOR UPDATE", [task_id])
            r = client.post(f"/api/v1/tasks/{task_id}/judgments", json=body, headers=auth(alice))
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1" and "busy" in r.json()["detail"]
            holder.rollback()
        with session_scope() as s:
            assert s.scalar(select(func.count()).select_from(Judgment)) == 0
        # the lock is gone: the same request goes through
        r = client.post(f"/api/v1/tasks/{task_id}/judgments", json=body, headers=auth(alice))
        assert r.status_code == 201
