"""Many labelers at once against a real uvicorn server: no over-judged task, no lost judgment."""

from __future__ import annotations

import asyncio
import random

import httpx
from sqlalchemy import func, select

from app.db import session_scope
from app.models import ComparisonTask, Judgment
from tests.conftest import IS_PG
from tests.factories import auth, make_tasks, make_user

CLIENTS = 32 if IS_PG else 8


async def _labeler(url: str, token: str, acked: list[tuple[int, int]]) -> None:
    headers = auth(token)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        while True:
            r = await http.get("/api/v1/tasks/next")
            if r.status_code == 204:
                return
            assert r.status_code == 200, r.text
            task = r.json()
            ids = [c["id"] for c in task["candidates"]]
            random.shuffle(ids)
            body = {"ranking": [[i] for i in ids]}
            r = await http.post(f"/api/v1/tasks/{task['task_id']}/judgments", json=body)
            assert r.status_code in (200, 201), r.text
            acked.append((task["task_id"], r.json()["id"]))


def test_concurrent_labelers_never_overfill_or_lose(live_server):
    tokens = [make_user(f"labeler{i}") for i in range(CLIENTS)]
    make_tasks(60, k=3, required=3)
    acked: list[tuple[int, int]] = []

    async def main() -> None:
        await asyncio.gather(*(_labeler(live_server.url, t, acked) for t in tokens))

    asyncio.run(main())
    with session_scope() as s:
        counts = dict(
            s.execute(select(Judgment.task_id, func.count()).group_by(Judgment.task_id)).all()
        )
        stored_ids = set(s.scalars(select(Judgment.id)))
        tasks = s.execute(
            select(ComparisonTask.id, ComparisonTask.judgment_count, ComparisonTask.status)
        ).all()
    assert len(acked) == 60 * 3
    assert {j for _, j in acked} <= stored_ids and len(stored_ids) == len(acked)
    assert all(n == 3 for n in counts.values()) and len(counts) == 60
    assert all(jc == 3 and status == "complete" for _, jc, status in tasks)
