"""Assignment rules of the labeling API, on the configured backend."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from app.db import session_scope
from app.models import Assignment, ComparisonTask, Judgment, utcnow
from tests.factories import auth, make_tasks, make_user


def _next(client, token):  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/tasks/next", headers=auth(token))
    assert r.status_code in (200, 204), r.text
    return r.json() if r.status_code == 200 else None


def _judge(client, token, task, **extra):  # type: ignore[no-untyped-def]
    ranking = [[c["id"]] for c in task["candidates"]]
    body = {"ranking": ranking, **extra}
    return client.post(f"/api/v1/tasks/{task['task_id']}/judgments", json=body, headers=auth(token))


def test_task_shape_and_204_when_empty(client):
    alice = make_user("alice")
    assert client.get("/api/v1/tasks/next", headers=auth(alice)).status_code == 204
    make_tasks(1, k=3)
    task = _next(client, alice)
    assert set(task) >= {"task_id", "prompt", "candidates", "lease_expires_at"}
    assert task["prompt"] == "p prompt 0"
    assert sorted(c["text"] for c in task["candidates"]) == [f"p answer 0.{j}" for j in range(3)]


def test_never_gets_a_task_already_judged(client):
    alice = make_user("alice")
    make_tasks(3, required=3)
    seen = []
    while (task := _next(client, alice)) is not None:
        assert _judge(client, alice, task).status_code == 201
        seen.append(task["task_id"])
    assert sorted(seen) == [1, 2, 3]


def test_live_leases_cover_required_judgments(client):
    alice, bob, carol = (make_user(n) for n in ("alice", "bob", "carol"))
    make_tasks(1, required=2)
    assert _next(client, alice)["task_id"] == 1
    assert _next(client, bob)["task_id"] == 1
    # two judgments needed, two live leases: nothing left for carol
    assert _next(client, carol) is None


def test_expired_lease_returns_task_to_pool(client):
    alice, bob = make_user("alice"), make_user("bob")
    make_tasks(1, required=1)
    task = _next(client, alice)
    assert _next(client, bob) is None
    with session_scope() as s:
        s.execute(update(Assignment).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert _next(client, bob)["task_id"] == task["task_id"]


def test_submit_after_expiry_accepted_while_needed_else_409(client):
    alice, bob = make_user("alice"), make_user("bob")
    make_tasks(2, required=1)
    t_alice = _next(client, alice)
    with session_scope() as s:
        s.execute(update(Assignment).values(expires_at=utcnow() - timedelta(seconds=1)))
    # still needed: accepted
    assert _judge(client, alice, t_alice).status_code == 201
    t2 = _next(client, alice)
    with session_scope() as s:
        s.execute(update(Assignment).values(expires_at=utcnow() - timedelta(seconds=1)))
    t2_bob = _next(client, bob)
    assert t2_bob["task_id"] == t2["task_id"]
    assert _judge(client, bob, t2_bob).status_code == 201
    late = _judge(client, alice, t2)
    assert late.status_code == 409
    assert "required judgment" in late.json()["detail"]


def test_resubmit_returns_stored_judgment_without_duplicate(client):
    alice = make_user("alice")
    make_tasks(1, k=2)
    task = _next(client, alice)
    first = _judge(client, alice, task, rationale="first")
    again = _judge(client, alice, task, rationale="second")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Judgment)) == 1


def test_order_closest_to_done_then_oldest(client):
    alice, bob = make_user("alice"), make_user("bob")
    make_tasks(3, required=2)
    # bob judges task 3 so it is closest to done
    with session_scope() as s:
        s.execute(
            update(ComparisonTask)
            .where(ComparisonTask.id != 3)
            .values(created_at=utcnow() - timedelta(hours=1))
        )
    for _ in range(3):
        t = _next(client, bob)
        if t["task_id"] == 3:
            assert _judge(client, bob, t).status_code == 201
            break
        client.post(f"/api/v1/tasks/{t['task_id']}/skip", json={"reason": "x"}, headers=auth(bob))
    assert _next(client, alice)["task_id"] == 3


def test_shown_order_is_randomized_and_stored(client):
    users = [make_user(f"u{i}") for i in range(12)]
    make_tasks(1, k=4, required=12)
    orders = set()
    for u in users:
        task = _next(client, u)
        order = [c["id"] for c in task["candidates"]]
        orders.add(tuple(order))
        stored = _judge(client, u, task).json()
        assert stored["shown_order"] == order
    assert len(orders) > 1


def test_pairwise_shorthand_and_ties(client):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    make_tasks(1, k=2, required=3)
    t = _next(client, alice)
    a, b = (c["id"] for c in t["candidates"])
    r = client.post(
        f"/api/v1/tasks/{t['task_id']}/judgments", json={"choice": "b"}, headers=auth(alice)
    )
    assert r.status_code == 201 and r.json()["ranking"] == [[b], [a]]
    t = _next(client, bob)
    r = client.post(
        f"/api/v1/tasks/{t['task_id']}/judgments", json={"choice": "tie"}, headers=auth(bob)
    )
    assert r.status_code == 201 and sorted(r.json()["ranking"][0]) == sorted([a, b])
    t = _next(client, carol)
    r = client.post(
        f"/api/v1/tasks/{t['task_id']}/judgments",
        json={
            "choice": "both_bad",
            "flags": ["factually_wrong"],
            "ratings": {"helpfulness": 2},
            "time_spent_ms": 1234,
        },
        headers=auth(carol),
    )
    assert r.status_code == 201
    assert r.json()["choice"] == "both_bad" and r.json()["time_spent_ms"] == 1234


def test_kwise_ranking_with_tie_groups(client):
    alice = make_user("alice")
    make_tasks(1, k=4)
    t = _next(client, alice)
    ids = [c["id"] for c in t["candidates"]]
    ranking = [[ids[2]], [ids[0], ids[3]], [ids[1]]]
    r = client.post(
        f"/api/v1/tasks/{t['task_id']}/judgments", json={"ranking": ranking}, headers=auth(alice)
    )
    assert r.status_code == 201 and r.json()["ranking"] == ranking


def test_invalid_judgments_get_422_with_message(client):
    alice = make_user("alice")
    make_tasks(1, k=3)
    t = _next(client, alice)
    ids = [c["id"] for c in t["candidates"]]
    url = f"/api/v1/tasks/{t['task_id']}/judgments"
    cases = [
        ({"ranking": [[ids[0]], [ids[1]]]}, "exactly once"),
        ({"ranking": [[ids[0]], [ids[0]], [ids[1], ids[2]]]}, "more than once"),
        ({"choice": "a"}, "only for tasks with 2"),
        ({"ranking": [[i] for i in ids], "ratings": {"wit": 3}}, "unknown rating"),
        ({"ranking": [[i] for i in ids], "ratings": {"honesty": 9}}, "between 1 and 5"),
        ({"ranking": [[i] for i in ids], "flags": ["boring"]}, "unknown flag"),
        ({}, "exactly one of"),
    ]
    for body, message in cases:
        r = client.post(url, json=body, headers=auth(alice))
        assert r.status_code == 422, body
        assert message in str(r.json()["detail"]), (body, r.json())
    assert client.post(url, json={"ranking": "x"}, headers=auth(alice)).status_code == 422
    assert (
        client.post(
            "/api/v1/tasks/999/judgments", json={"choice": "a"}, headers=auth(alice)
        ).status_code
        == 404
    )


def test_submit_without_lease_or_after_skip_is_409(client):
    alice, bob = make_user("alice"), make_user("bob")
    make_tasks(1, k=2, required=2)
    t = _next(client, alice)
    assert _judge(client, bob, t).status_code == 409
    r = client.post(
        f"/api/v1/tasks/{t['task_id']}/skip", json={"reason": "unsure"}, headers=auth(alice)
    )
    assert r.status_code == 204
    assert _judge(client, alice, t).status_code == 409
    assert _next(client, alice) is None  # a skipped task is not offered again
