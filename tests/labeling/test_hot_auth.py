"""The hot routes read a cached principal but check users.auth_version and users.active inside
their own statement: revocation, deactivation and role changes take effect on the next request.

auth_version is bumped here with SQL, as the account code does on logout, revocation,
deactivation and role or password changes.
"""

from __future__ import annotations

from sqlalchemy import func, select, text

from app.auth.deps import auth_cache
from app.db import session_scope
from app.models import Assignment, Judgment
from tests.factories import auth, make_tasks, make_user
from tests.labeling.test_pages import login

SUBMIT = "/api/v1/tasks/{}/judgments"


def _sql(statement: str, **params: object) -> None:
    with session_scope() as s:
        s.execute(text(statement), params)


def _count(model) -> int:  # type: ignore[no-untyped-def]
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def _cached(token: str, client) -> dict:  # type: ignore[no-untyped-def]
    """Lease a task, which also puts the token's principal in the auth cache."""
    r = client.get("/api/v1/tasks/next", headers=auth(token))
    assert r.status_code == 200, r.text
    assert auth_cache._items, "the principal was not cached"
    return r.json()


def test_revoked_token_is_refused_on_the_next_request(client):
    alice = make_user("alice")
    make_tasks(2)
    task = _cached(alice, client)
    _sql("UPDATE api_tokens SET revoked = true")
    _sql("UPDATE users SET auth_version = auth_version + 1 WHERE name = 'alice'")
    r = client.post(SUBMIT.format(task["task_id"]), json={"choice": "a"}, headers=auth(alice))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert _count(Judgment) == 0
    r = client.get("/api/v1/tasks/next", headers=auth(alice))
    assert r.status_code == 401


def test_deactivated_labeler_gets_nothing_more(client):
    alice = make_user("alice")
    make_tasks(3)
    _cached(alice, client)
    _sql("UPDATE users SET active = false, auth_version = auth_version + 1")
    assert client.get("/api/v1/tasks/next", headers=auth(alice)).status_code == 401
    assert _count(Assignment) == 1  # no second lease was written


def test_inactive_user_is_refused_even_without_a_version_bump(client):
    alice = make_user("alice")
    make_tasks(2)
    task = _cached(alice, client)
    _sql("UPDATE users SET active = false")  # the statement checks users.active as well
    r = client.post(SUBMIT.format(task["task_id"]), json={"choice": "a"}, headers=auth(alice))
    assert r.status_code == 401
    assert _count(Judgment) == 0


def test_role_change_is_seen_on_the_next_request(client):
    alice = make_user("alice")
    make_tasks(2)
    _cached(alice, client)
    _sql("UPDATE users SET role = 'researcher', auth_version = auth_version + 1")
    r = client.get("/api/v1/tasks/next", headers=auth(alice))
    assert r.status_code == 403 and "labeler" in r.json()["detail"]


def test_a_bump_with_a_still_valid_credential_authenticates_again_and_goes_on(client):
    alice = make_user("alice")
    make_tasks(2)
    task = _cached(alice, client)
    _sql("UPDATE users SET auth_version = auth_version + 5")
    url = SUBMIT.format(task["task_id"]) + "?next=1"
    r = client.post(url, json={"choice": "b"}, headers=auth(alice))
    assert r.status_code == 201, r.text
    assert r.json()["next"]["task_id"] != task["task_id"]
    [principal] = [p for _, p in auth_cache._items.values() if p is not None]
    assert principal.auth_version == 5  # the cache holds the fresh lookup now


def test_cookie_session_is_ended_by_deactivation(client):
    make_user("alice")
    make_tasks(2)
    assert login(client, "alice").status_code == 200
    r = client.get("/api/v1/tasks/next")
    assert r.status_code == 200
    _sql("UPDATE users SET active = false, auth_version = auth_version + 1")
    assert client.get("/api/v1/tasks/next").status_code == 401
