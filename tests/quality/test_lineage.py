"""Lineage: recorded and inferred snapshots, reward versions by id ranges, policy versions by
the reward version they used or their parent; hostile input on the quality routes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.db import session_scope
from app.models import DatasetSnapshot, ModelKind, ModelStatus, ModelVersion, User, utcnow
from app.quality import lineage
from tests.exports.helpers import candidates, judge, user_id
from tests.factories import auth, make_tasks, make_user


def _version(s, kind, name, metrics, parent=None):  # type: ignore[no-untyped-def]
    mv = ModelVersion(version=name, kind=kind, status=ModelStatus.ready, path=f"/x/{name}",
                      metrics=metrics, parent_id=parent)  # fmt: skip
    s.add(mv)
    s.flush()
    return mv.id


def test_lineage_recorded_inferred_and_chained():
    make_user("ann")
    make_user("bob")
    tasks = make_tasks(3, required=2)
    past = utcnow() - timedelta(days=3)
    ann = [judge(t, "ann", [[candidates(t)[0]], [candidates(t)[1]]], created_at=past)
           for t in tasks]  # fmt: skip
    bob = [judge(t, "bob", [[candidates(t)[1]], [candidates(t)[0]]]) for t in tasks]
    with session_scope() as s:
        # recorded: holds ann's first judgment only; old: no ranges, filters name bob only;
        # old and unfiltered (before bob judged): ann's judgments, inferred
        s.add_all([
            DatasetSnapshot(shape="trl", format="jsonl", filters={}, sha256="a",
                            judgment_id_ranges=[[ann[0], ann[0]]]),
            DatasetSnapshot(shape="raw", format="csv", filters={"labelers": ["bob"]}, sha256="b"),
            DatasetSnapshot(shape="raw", format="jsonl", filters={}, sha256="c",
                            created_at=past + timedelta(hours=1)),
            DatasetSnapshot(shape="raw", format="jsonl", filters={}, sha256=None),  # unfinished
        ])  # fmt: skip
        r1 = _version(s, ModelKind.reward, "rm-1", {"judgment_id_ranges": [[ann[0], ann[-1]]]})
        r2 = _version(s, ModelKind.reward, "rm-2", {"judgment_id_ranges": [[bob[0], bob[-1]]]})
        p1 = _version(s, ModelKind.policy, "pol-1", {"reward_version_id": r1})
        _version(s, ModelKind.policy, "pol-2", {"reward_version_id": r2}, parent=p1)
        _version(s, ModelKind.policy, "pol-3", {"reward_version_id": r2})
    with session_scope() as s:
        uid = s.scalar(select(User.id).where(User.name == "ann"))
        lin = lineage.of_labeler(s, uid, "ann")
    assert [(u.name, u.judgments, u.inferred) for u in lin.snapshots] == [
        ("snapshot 1 (trl, jsonl)", 1, False),
        ("snapshot 3 (raw, jsonl)", 3, True),
    ]
    assert [u.name for u in lin.rewards] == ["rm-1"]
    # pol-1 trained against rm-1; pol-2 started from pol-1; pol-3 never saw ann's judgments
    assert [(u.name, u.via) for u in lin.policies] == [("pol-1", "rm-1"), ("pol-2", "pol-1")]
    with session_scope() as s:
        assert (
            lineage.of_labeler(s, user_id("bob"), "bob").as_dict()["reward_versions"][0]["name"]
            == "rm-2"
        )


def test_judgment_lineage_api(client):
    admin = auth(make_user("root", "admin"))
    make_user("ann")
    t = make_tasks(1)[0]
    j = judge(t, "ann", [[candidates(t)[0]], [candidates(t)[1]]])
    with session_scope() as s:
        r1 = _version(s, ModelKind.reward, "rm-1", {"judgment_id_ranges": [[j, j]]})
        _version(s, ModelKind.policy, "pol-1", {"reward_version_id": r1})
    body = client.get(f"/api/v1/judgments/{j}/lineage", headers=admin).json()
    assert [v["name"] for v in body["reward_versions"]] == ["rm-1"]
    assert [(v["name"], v["via"]) for v in body["policy_versions"]] == [("pol-1", "rm-1")]
    assert client.get(f"/api/v1/judgments/{j + 1}/lineage", headers=admin).status_code == 404
    lab = auth(make_user("lab"))
    assert client.get(f"/api/v1/judgments/{j}/lineage", headers=lab).status_code == 403


def test_hostile_input_on_quality_routes(client):
    admin = auth(make_user("root", "admin"))
    make_user("lab")
    uid = user_id("lab")
    t = make_tasks(1)[0]
    for body in ({"choice": "a", "extra": 1}, {"ranking": [[0], ["x"]]}, {"choice": "maybe"},
                 {"ranking": [[0], [2**40]]}, [], "a"):  # fmt: skip
        r = client.put(f"/api/v1/tasks/{t}/gold", json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        assert "detail" in r.json()
    assert client.put(f"/api/v1/tasks/{2**40}/gold", json={"choice": "a"},
                      headers=admin).status_code == 422  # fmt: skip
    r = client.post(f"/api/v1/labelers/{uid}/exclude", json={"retrain": "yes please"},
                    headers=admin)  # fmt: skip
    assert r.status_code == 422
    r = client.post(f"/api/v1/labelers/{uid}/exclude", json={"x": 1}, headers=admin)
    assert r.status_code == 422
    r = client.post(f"/api/v1/labelers/{uid}/exclude", json={"retrain": False}, headers=admin)
    assert r.status_code == 200 and r.json()["reward_run_id"] is None
    assert client.post(f"/api/v1/labelers/{uid}/exclude", json={},
                       headers=admin).status_code == 409  # fmt: skip
    assert client.post(f"/api/v1/labelers/{uid}/include", headers=admin).status_code == 200
    assert client.post(f"/api/v1/labelers/{uid}/include", headers=admin).status_code == 409
    # an admin is not a labeler: no quality actions on them
    root = user_id("root")
    assert client.post(f"/api/v1/labelers/{root}/pause", headers=admin).status_code == 404
