"""Queue order with selection priorities: within equal remaining judgments the most uncertain task
comes first; concurrent labelers still never get a task twice (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import random

import httpx
from sqlalchemy import func, select, update

from app.db import session_scope
from app.models import ComparisonTask, Judgment
from tests.conftest import IS_PG
from tests.factories import auth, make_tasks, make_user


def _set_priority(ids: list[int], prios: list[float]) -> None:
    with session_scope() as s:
        for tid, p in zip(ids, prios, strict=True):
            s.execute(update(ComparisonTask).where(ComparisonTask.id == tid).values(priority=p))


def test_most_uncertain_first_within_equal_remaining(client) -> None:
    alice = make_user("alice")
    ids = make_tasks(4, required=1)
    two = make_tasks(1, required=2, prefix="r")  # 2 remaining: after every 1-remaining task
    _set_priority(ids + two, [0.1, 0.9, 0.5, 0.0, 1.0])
    order = []
    while (r := client.get("/api/v1/tasks/next", headers=auth(alice))).status_code == 200:
        task = r.json()
        ranking = [[c["id"]] for c in task["candidates"]]
        body = {"ranking": ranking}
        url = f"/api/v1/tasks/{task['task_id']}/judgments"
        assert client.post(url, json=body, headers=auth(alice)).status_code == 201
        order.append(task["task_id"])
    assert order == [ids[1], ids[2], ids[0], ids[3], two[0]]


def test_submit_next_follows_priority(client) -> None:
    alice = make_user("alice")
    ids = make_tasks(3, required=1)
    _set_priority(ids, [0.2, 0.3, 0.8])
    task = client.get("/api/v1/tasks/next", headers=auth(alice)).json()
    assert task["task_id"] == ids[2]
    body = {"ranking": [[c["id"]] for c in task["candidates"]]}
    r = client.post(f"/api/v1/tasks/{ids[2]}/judgments?next=1", json=body, headers=auth(alice))
    assert r.status_code == 201 and r.json()["next"]["task_id"] == ids[1]


CLIENTS = 16 if IS_PG else 6


async def _labeler(url: str, token: str, seen: list[int]) -> None:
    async with httpx.AsyncClient(base_url=url, headers=auth(token), timeout=60) as http:
        while True:
            r = await http.get("/api/v1/tasks/next")
            if r.status_code == 204:
                return
            assert r.status_code == 200, r.text
            task = r.json()
            body = {"choice": random.choice(["a", "b", "tie", "both_bad"])}
            r = await http.post(f"/api/v1/tasks/{task['task_id']}/judgments", json=body)
            assert r.status_code in (200, 201), r.text
            seen.append(task["task_id"])


def test_prioritised_tasks_are_never_double_served(live_server) -> None:
    tokens = [make_user(f"l{i}") for i in range(CLIENTS)]
    ids = make_tasks(40, required=1)
    rng = random.Random(5)
    _set_priority(ids, [rng.choice([0.0, 0.25, 0.5, 1.0]) for _ in ids])
    seen: list[int] = []

    async def main() -> None:
        await asyncio.gather(*(_labeler(live_server.url, t, seen) for t in tokens))

    asyncio.run(main())
    assert sorted(seen) == sorted(ids)  # each task served (and judged) exactly once
    with session_scope() as s:
        per_task = s.execute(select(Judgment.task_id, func.count()).group_by(Judgment.task_id))
        assert all(n == 1 for _, n in per_task)
