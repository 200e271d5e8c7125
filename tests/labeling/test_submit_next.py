"""POST /api/v1/tasks/{id}/judgments?next=1: submit and lease the next task in one request."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.db import session_scope
from app.models import Assignment, AssignmentStatus, Judgment, utcnow
from tests.factories import auth, make_tasks, make_user

SUBMIT_NEXT = "/api/v1/tasks/{}/judgments?next=1"


def _next(client, token):  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/tasks/next", headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


def _body(task):  # type: ignore[no-untyped-def]
    return {"ranking": [[c["id"]] for c in task["candidates"]]}


def _leases() -> dict[int, str]:
    with session_scope() as s:
        q = select(Assignment.task_id, Assignment.status)
        return {t: str(st) for t, st in s.execute(q)}


def test_submit_and_next_in_one_request(client):
    alice = make_user("alice")
    make_tasks(3, k=3)
    first = _next(client, alice)
    r = client.post(SUBMIT_NEXT.format(first["task_id"]), json=_body(first), headers=auth(alice))
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["task_id"] == first["task_id"] and out["ranking"] == _body(first)["ranking"]
    second = out["next"]
    assert second["task_id"] != first["task_id"]
    assert set(second) >= {"task_id", "prompt", "candidates", "lease_expires_at"}
    assert second["prompt"].startswith("p prompt ")
    # both effects are stored: the judgment and the new lease, with the order shown
    with session_scope() as s:
        [j] = s.scalars(select(Judgment)).all()
        order = s.scalar(
            select(Assignment.shown_order).where(Assignment.task_id == second["task_id"])
        )
    assert j.task_id == first["task_id"]
    assert order == [c["id"] for c in second["candidates"]]
    leases = _leases()
    assert leases[first["task_id"]] == AssignmentStatus.submitted
    assert leases[second["task_id"]] == AssignmentStatus.active
    # a plain GET now returns the same lease (the labeler holds it)
    assert _next(client, alice)["task_id"] == second["task_id"]


def test_next_is_null_when_nothing_is_left_and_the_judged_task_is_never_offered(client):
    alice = make_user("alice")
    make_tasks(1, required=3)  # still open after alice's judgment, but never hers again
    task = _next(client, alice)
    r = client.post(SUBMIT_NEXT.format(task["task_id"]), json=_body(task), headers=auth(alice))
    assert r.status_code == 201 and r.json()["next"] is None
    assert client.get("/api/v1/tasks/next", headers=auth(alice)).status_code == 204


def test_a_retry_answers_200_with_the_stored_judgment_and_the_same_next_task(client):
    alice = make_user("alice")
    make_tasks(3)
    task = _next(client, alice)
    url = SUBMIT_NEXT.format(task["task_id"])
    first = client.post(url, json={"choice": "a"}, headers=auth(alice))
    again = client.post(url, json={"choice": "a"}, headers=auth(alice))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()  # same judgment, same (held) next lease
    with session_scope() as s:
        assert len(s.scalars(select(Judgment)).all()) == 1
        assert len(s.scalars(select(Assignment)).all()) == 2


def test_409_carries_the_next_task_so_the_labeler_moves_on(client):
    alice, bob = make_user("alice"), make_user("bob")
    make_tasks(3, required=1)
    late = _next(client, alice)
    with session_scope() as s:
        s.execute(update(Assignment).values(expires_at=utcnow() - timedelta(seconds=1)))
    taken = _next(client, bob)
    assert taken["task_id"] == late["task_id"] == 1
    r = client.post(SUBMIT_NEXT.format(1), json=_body(taken), headers=auth(bob))
    assert r.status_code == 201 and r.json()["next"]["task_id"] == 2
    r = client.post(SUBMIT_NEXT.format(1), json=_body(late), headers=auth(alice))
    assert r.status_code == 409
    assert "not stored" in r.json()["detail"]
    assert r.json()["next"]["task_id"] == 3  # task 2 is covered by bob's live lease
    with session_scope() as s:
        rows = s.execute(select(Assignment.task_id, Assignment.user_id, Assignment.status)).all()
    assert sorted((t, str(st)) for t, _, st in rows) == [
        (1, "active"), (1, "submitted"), (2, "active"), (3, "active"),
    ]  # fmt: skip


def test_409_for_a_task_never_assigned_still_leases_the_next(client):
    alice, bob = make_user("alice"), make_user("bob")
    make_tasks(2, required=2)
    t = _next(client, alice)
    r = client.post(SUBMIT_NEXT.format(t["task_id"]), json=_body(t), headers=auth(bob))
    assert r.status_code == 409 and "never assigned" in r.json()["detail"]
    assert r.json()["next"]["task_id"] in (1, 2)


def test_invalid_judgment_leases_nothing(client):
    alice = make_user("alice")
    make_tasks(2, k=3)
    t = _next(client, alice)
    ids = [c["id"] for c in t["candidates"]]
    url = SUBMIT_NEXT.format(t["task_id"])
    for body in ({"ranking": [[ids[0]], [ids[1]]]}, {"choice": "a"}, {"ranking": [[ids[0]], []]}):
        r = client.post(url, json=body, headers=auth(alice))
        assert r.status_code == 422 and "next" not in r.json(), r.text
    assert len(_leases()) == 1  # still only the task on screen
    r = client.post("/api/v1/tasks/999/judgments?next=1", json=_body(t), headers=auth(alice))
    assert r.status_code == 404 and "next" not in r.json()


def test_ids_beyond_int4_are_a_clear_422(client):
    alice = make_user("alice")
    make_tasks(1)
    t = _next(client, alice)
    body = {"ranking": [[2**40], [t["candidates"][0]["id"]]]}
    r = client.post(SUBMIT_NEXT.format(t["task_id"]), json=body, headers=auth(alice))
    assert r.status_code == 422 and "exactly once" in r.json()["detail"]
