"""Gold tasks: marked by API and import, mixed into the queue, never counted, never twice."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app.config import get_settings
from app.db import session_scope
from app.models import Assignment, ComparisonTask, TaskStatus
from app.prompts import parsing, store
from tests.factories import auth, make_tasks, make_user


@pytest.fixture
def gold_rate():  # type: ignore[no-untyped-def]
    s = get_settings()
    old = s.gold_rate
    yield lambda rate: setattr(s, "gold_rate", rate)
    s.gold_rate = old


def _next(client, token):  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/tasks/next", headers=auth(token))
    assert r.status_code in (200, 204), r.text
    return r.json() if r.status_code == 200 else None


def _judge(client, token, task, next_=False):  # type: ignore[no-untyped-def]
    body = {"ranking": [[c["id"]] for c in task["candidates"]]}
    url = f"/api/v1/tasks/{task['task_id']}/judgments" + ("?next=1" if next_ else "")
    r = client.post(url, json=body, headers=auth(token))
    assert r.status_code == 201, r.text
    return r.json()


def _mark(client, admin, task_id, body):  # type: ignore[no-untyped-def]
    return client.put(f"/api/v1/tasks/{task_id}/gold", json=body, headers=auth(admin))


def test_gold_by_api_validates_and_answers(client):
    admin = make_user("root", "admin")
    lab = make_user("lab")
    t2 = make_tasks(1, k=2)[0]
    t3 = make_tasks(1, k=3, prefix="q")[0]
    assert _mark(client, lab, t2, {"choice": "a"}).status_code == 403
    assert _mark(client, admin, 999, {"choice": "a"}).status_code == 404
    assert _mark(client, admin, t3, {"choice": "a"}).status_code == 422  # choice needs K=2
    assert _mark(client, admin, t3, {"ranking": [[0], [0, 2]]}).status_code == 422
    assert _mark(client, admin, t2, {"choice": []}).status_code == 422
    assert _mark(client, admin, t2, {"choice": "a", "ranking": [[0], [1]]}).status_code == 422
    r = _mark(client, admin, t2, {"choice": ["a", "tie"]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "gold" and r.json()["accepted"] == "1 > 2 or 1 = 2"
    r = _mark(client, admin, t3, {"ranking": [[2], [0, 1]]})
    assert r.json()["accepted"] == "3 > 1 = 2"
    r = client.delete(f"/api/v1/tasks/{t2}/gold", headers=auth(admin))
    assert r.json()["status"] == "open" and r.json()["gold"] is None
    assert client.delete(f"/api/v1/tasks/{t2}/gold", headers=auth(admin)).status_code == 409


def test_gold_by_import_field_with_line_errors():
    lines = [
        {"prompt": "x", "completions": ["a1", "a2"], "gold": {"choice": "b"}},
        {"prompt": "y", "completions": ["b1", "b2", "b3"], "gold": {"ranking": [[1], [0, 2]]}},
        {"prompt": "z", "completions": ["c1", "c2"]},
    ]
    data = "\n".join(json.dumps(x) for x in lines).encode()
    records = parsing.parse(data, "comparisons", "jsonl")
    with session_scope() as s:
        _, ids = store.import_comparisons(s, records, 1)
    with session_scope() as s:
        tasks = {t.id: t for t in s.scalars(select(ComparisonTask))}
        assert tasks[ids[0]].status == TaskStatus.gold and tasks[ids[2]].status == TaskStatus.open
        assert len(tasks[ids[0]].gold["accept"]) == 1
    bad = b'{"prompt": "w", "completions": ["d1", "d2", "d3"], "gold": {"choice": "a"}}\n'
    with pytest.raises(parsing.FileErrors) as e:
        parsing.parse(bad, "comparisons", "jsonl")
    assert e.value.errors[0][0] == 1 and "2 candidates" in e.value.errors[0][1]


def test_gold_mixed_in_never_counted_never_twice(client, gold_rate):
    admin = make_user("root", "admin")
    alice, bob = make_user("alice"), make_user("bob")
    gold_ids = make_tasks(2, required=1, prefix="g")
    for t in gold_ids:
        assert _mark(client, admin, t, {"choice": "a"}).status_code == 200
    open_ids = make_tasks(3, required=1)
    gold_rate(1.0)  # every request draws gold while any is left for the labeler
    got = [_next(client, alice)]
    while got[-1] is not None:
        nxt = _judge(client, alice, got[-1], next_=True)["next"]
        got.append(nxt)
    seen = [t["task_id"] for t in got[:-1]]
    assert seen[:2] == gold_ids and sorted(seen[2:]) == open_ids  # gold first, then the queue
    assert set(got[0]) == set(got[2])  # a gold task looks like any other task
    # bob gets the same gold tasks (gold never fills up), alice never again
    assert _next(client, bob)["task_id"] == gold_ids[0]
    with session_scope() as s:
        for t in s.scalars(select(ComparisonTask).where(ComparisonTask.id.in_(gold_ids))):
            assert t.status == TaskStatus.gold and t.judgment_count == 0  # never counted
    gold_rate(0.0)
    # bob, not drawing gold, gets nothing (the open tasks are done), though gold is left
    _judge(client, bob, {"task_id": gold_ids[0], "candidates": got[0]["candidates"]})
    assert _next(client, bob) is None
    with session_scope() as s:
        n = s.scalar(select(Assignment.id).where(Assignment.task_id == gold_ids[1]).limit(1))
        assert n is not None  # alice's


def test_gold_judged_before_marking_does_not_block_it(client, gold_rate):
    """A task already full when marked gold still takes gold answers (no 'full' verdict)."""
    admin, alice, bob = make_user("root", "admin"), make_user("alice"), make_user("bob")
    t = make_tasks(1, required=1)[0]
    _judge(client, alice, _next(client, alice))
    assert _mark(client, admin, t, {"choice": ["a", "b"]}).status_code == 200
    gold_rate(1.0)
    task = _next(client, bob)
    assert task["task_id"] == t
    _judge(client, bob, task)
    assert _next(client, alice) is None  # alice answered it before it became gold
