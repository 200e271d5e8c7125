"""Every judgment acknowledged to a client survives kill -9 of the web server, exactly once."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import func, select

from app.db import session_scope
from app.models import ComparisonTask, Judgment, TaskStatus, User
from tests.conftest import IS_PG, LiveServer
from tests.factories import auth, make_tasks, make_user

# SQLite serializes writers, so the embedded variant runs a smaller fleet through the same loop
LABELERS = 64 if IS_PG else 16
TASKS = 64 if IS_PG else 40
REQUIRED = 2
KILLS_AT = (0.25, 0.6)  # fractions of all judgment slots acknowledged before each kill -9


@dataclass
class Tally:
    acked: dict[tuple[int, int], int] = field(default_factory=dict)  # (user, task) -> judgment id
    resubmits_200: int = 0
    conflicts: list[str] = field(default_factory=list)
    transport_errors: int = 0
    outages: int = 0


async def _labeler(
    client: httpx.AsyncClient, token: str, user_id: int, tally: Tally, flow: str
) -> None:
    """next -> submit until no task is left; retry through outages, resubmit unacknowledged work.
    flow "combined": submit with ?next=1 and take the next task from its answer."""
    pending: tuple[int, dict] | None = None
    offered: dict | None = None
    suffix = "?next=1" if flow == "combined" else ""
    while True:
        try:
            if pending is None:
                if offered is None:
                    r = await client.get("/api/v1/tasks/next", headers=auth(token))
                    if r.status_code == 204:
                        return
                    assert r.status_code == 200, r.text
                    offered = r.json()
                task, offered = offered, None
                ranking = [[c["id"]] for c in task["candidates"]]
                random.shuffle(ranking)
                pending = (task["task_id"], {"ranking": ranking, "time_spent_ms": 500})
            task_id, body = pending
            r = await client.post(
                f"/api/v1/tasks/{task_id}/judgments{suffix}", json=body, headers=auth(token)
            )
        except httpx.TransportError:
            tally.transport_errors += 1
            await asyncio.sleep(0.05 + random.random() * 0.1)
            continue  # same pending judgment: submit is idempotent
        assert r.status_code < 500, r.text
        if r.status_code == 409:
            tally.conflicts.append(r.text)
        else:
            assert r.status_code in (200, 201), r.text
            if r.status_code == 200:
                tally.resubmits_200 += 1
            key = (user_id, task_id)
            assert tally.acked.setdefault(key, r.json()["id"]) == r.json()["id"]
        pending = None
        if flow == "combined":
            offered = r.json()["next"]
            if offered is None:
                return  # nothing to do: like a 204


async def _killer(server: LiveServer, tally: Tally) -> None:
    slots = TASKS * REQUIRED
    for fraction in KILLS_AT:
        while len(tally.acked) < fraction * slots:
            await asyncio.sleep(0.005)
        server.kill()  # SIGKILL to the whole process group, mid-traffic
        tally.outages += 1
        await asyncio.sleep(0.3)  # clients meet refused connections meanwhile
        await asyncio.to_thread(server.start)


async def _drive(server: LiveServer, users: list[tuple[int, str]], flow: str) -> Tally:
    tally = Tally()
    limits = httpx.Limits(max_connections=LABELERS, max_keepalive_connections=LABELERS)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
        killer = asyncio.create_task(_killer(server, tally))
        await asyncio.gather(*(_labeler(client, tok, uid, tally, flow) for uid, tok in users))
        await killer
    return tally


@pytest.mark.timeout(300)
@pytest.mark.parametrize("flow", ["two", "combined"])
def test_acknowledged_judgments_survive_kill_9(live_server: LiveServer, flow: str) -> None:
    tokens = [make_user(f"crash{i:02d}") for i in range(LABELERS)]
    with session_scope() as s:
        ids = {name: uid for name, uid in s.execute(select(User.name, User.id))}
    users = [(ids[f"crash{i:02d}"], tok) for i, tok in enumerate(tokens)]
    make_tasks(TASKS, k=3, required=REQUIRED)

    tally = asyncio.run(_drive(live_server, users, flow))

    assert tally.outages == len(KILLS_AT) and tally.transport_errors > 0, "no request met the crash"
    assert tally.conflicts == [], "a labeler's judgment was refused"
    with session_scope() as s:
        stored = {
            (u, t): jid
            for jid, t, u in s.execute(select(Judgment.id, Judgment.task_id, Judgment.user_id))
        }
        per_task = {
            t: n
            for t, n in s.execute(select(Judgment.task_id, func.count()).group_by(Judgment.task_id))
        }
        tasks = s.execute(
            select(ComparisonTask.id, ComparisonTask.judgment_count, ComparisonTask.status)
        ).all()
        total = s.scalar(select(func.count()).select_from(Judgment))
    lost = {k: v for k, v in tally.acked.items() if stored.get(k) != v}
    assert not lost, f"{len(lost)} acknowledged judgment(s) missing or changed after kill -9"
    assert total == len(stored), "a (task, labeler) pair was stored twice"
    for task_id, count, status in tasks:
        assert per_task.get(task_id, 0) == count <= REQUIRED, (
            task_id,
            count,
            per_task.get(task_id),
        )
        assert status == TaskStatus.complete, f"task {task_id} never filled: {count}/{REQUIRED}"
    # every stored judgment was acknowledged (retries turned lost responses into 200s)
    assert set(stored) == set(tally.acked)
