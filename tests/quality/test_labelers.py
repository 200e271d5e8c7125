"""Per-labeler statistics, flags, pause and the /admin/labelers pages and API."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from app.db import session_scope
from app.models import ComparisonTask, Judgment, Run, utcnow
from app.quality import service
from app.quality.gold import GoldIn
from app.quality.stats import Thresholds, binomial_p
from tests.exports.helpers import candidates, user_id
from tests.factories import auth, make_tasks, make_user

EVIL = '<script>alert("x")</script>'


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert m
    return m.group(1)


def _store(task: int, uid: int, ranking, shown, ms: int, at) -> None:  # type: ignore[no-untyped-def]
    with session_scope() as s:
        s.add(Judgment(task_id=task, user_id=uid, ranking=ranking, shown_order=shown,
                       time_spent_ms=ms, created_at=at))  # fmt: skip


def _crowd() -> dict[str, int]:
    """good1-3 answer 'first candidate wins' (good3 always picks the one shown first); EVIL picks
    the other one, always shown first, in 0.5 s; 24 tasks, 5 of them gold."""
    names = ("good1", "good2", "good3", EVIL)
    for n in names:
        make_user(n)
    ids = {n: user_id(n) for n in names}
    tasks = make_tasks(24, required=3)
    now = utcnow() - timedelta(hours=1)
    for i, t in enumerate(tasks):
        a, b = candidates(t)
        at = now + timedelta(seconds=i)
        _store(t, ids["good1"], [[a], [b]], [a, b] if i % 2 else [b, a], 9000, at)
        _store(t, ids["good2"], [[a], [b]], [b, a], 8000, at)
        _store(t, ids["good3"], [[a], [b]], [a, b], 7000, at)
        _store(t, ids[EVIL], [[b], [a]], [b, a], 500, at)  # wrong, shown first, fast
    with session_scope() as s:
        for t in tasks[:5]:
            service.set_gold(s, t, GoldIn(choice="a"))
    return ids


def test_statistics_and_flags():
    ids = _crowd()
    th = Thresholds(min_gold_count=5, min_overlap=10, min_position_n=20, max_position_p=0.001)
    with session_scope() as s:
        stats = service.labeler_stats(s, th)
    good, bad = stats[ids["good1"]], stats[ids[EVIL]]
    assert (good.all.gold_accuracy, good.all.gold_n) == (1.0, 5)
    assert (bad.all.gold_accuracy, bad.all.gold_n) == (0.0, 5)
    assert good.all.agreement == 1.0 and bad.all.agreement == 0.0 and bad.all.compared == 24
    assert bad.all.first_share == 1.0 and bad.all.position_p < 1e-6
    assert good.all.first_share == 0.5
    assert bad.all.median_ms == 500 and bad.all.fast_share == 1.0
    assert stats[ids["good3"]].flags == ["position"]  # right, but always the first shown
    assert good.flags == [] and set(bad.flags) == {"gold", "agreement", "position", "fast"}
    assert len(bad.series["agreement"]) == 12
    assert good.weight("gold") > 2 and bad.weight("gold") == 0.0
    # clearing the flag: only later judgments count toward flags
    with session_scope() as s:
        service.clear_flag(s, ids[EVIL])
    with session_scope() as s:
        assert service.labeler_stats(s, th)[ids[EVIL]].flags == []


def test_binomial_test_matches_known_values():
    assert abs(binomial_p(0, 10) - 2 / 1024) < 1e-12
    assert abs(binomial_p(5, 10) - 1.0) < 1e-12
    assert abs(binomial_p(8, 10) - 112 / 1024) < 1e-9


def test_paused_labeler_gets_no_new_task(client):
    admin = auth(make_user("root", "admin"))
    lab = make_user("lab")
    make_tasks(2)
    uid = user_id("lab")
    first = client.get("/api/v1/tasks/next", headers=auth(lab)).json()
    assert client.post(f"/api/v1/labelers/{uid}/pause", headers=admin).json()["paused"]
    # the live lease stays theirs; nothing new after it
    assert client.get("/api/v1/tasks/next", headers=auth(lab)).json()["task_id"] == first["task_id"]
    body = {"ranking": [[c["id"]] for c in first["candidates"]]}
    r = client.post(f"/api/v1/tasks/{first['task_id']}/judgments?next=1", json=body,
                    headers=auth(lab))  # fmt: skip
    assert r.status_code == 201 and r.json()["next"] is None
    assert client.get("/api/v1/tasks/next", headers=auth(lab)).status_code == 204
    client.post(f"/api/v1/labelers/{uid}/resume", headers=admin)
    assert client.get("/api/v1/tasks/next", headers=auth(lab)).status_code == 200
    assert client.post("/api/v1/labelers/999/pause", headers=admin).status_code == 404
    from app.models import AuditEvent

    with session_scope() as s:
        assert [
            e.action
            for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))
            if e.action.startswith("labeler.")
        ] == [  # fmt: skip
            "labeler.pause",
            "labeler.resume",
        ]
    assert client.post(f"/api/v1/labelers/{uid}/pause", headers=auth(lab)).status_code == 403


def test_pages_escape_and_actions_work(client):
    ids = _crowd()
    h = auth(make_user("root", "admin"))
    page = client.get("/admin/labelers", headers=h)
    assert page.status_code == 200
    assert EVIL not in page.text and "&lt;script&gt;" in page.text
    assert '<svg class="spark"' in page.text
    csrf = _csrf(page.text)
    bad = ids[EVIL]
    r = client.post(f"/admin/labelers/{bad}/exclude-retrain", data={"csrf_token": csrf}, headers=h,
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    with session_scope() as s:
        assert service.excluded_count(s, bad) == 24
        run = s.scalar(select(Run))
        assert run.kind == "reward" and run.params["then_policy"] is True
    detail = client.get(f"/admin/labelers/{bad}", headers=h)
    assert detail.status_code == 200 and "Undo exclusion" in detail.text
    assert client.post(f"/admin/labelers/{bad}/exclude", data={"csrf_token": csrf},
                       headers=h).status_code == 409  # fmt: skip
    assert client.post(f"/admin/labelers/{bad}/include", data={"csrf_token": "no"},
                       headers=h).status_code == 403  # fmt: skip
    client.post(f"/admin/labelers/{bad}/include", data={"csrf_token": csrf}, headers=h)
    with session_scope() as s:
        assert service.excluded_count(s, bad) == 0
    assert client.post(f"/admin/labelers/{bad}/nope", data={"csrf_token": csrf},
                       headers=h).status_code == 404  # fmt: skip
    # gold from the page: bad input is a 400 with the reason, good input marks the task
    with session_scope() as s:
        t = s.scalar(select(ComparisonTask.id).where(ComparisonTask.status == "open"))
    for task_id, answer in (("x", "a"), (str(t), "maybe"), ("99999", "a"), (str(t), "1 > 3")):
        r = client.post("/admin/labelers/gold", data={"csrf_token": csrf, "task_id": task_id,
                        "answer": answer}, headers=h)  # fmt: skip
        assert r.status_code == 400, (task_id, answer, r.text[:200])
    r = client.post("/admin/labelers/gold", data={"csrf_token": csrf, "task_id": str(t),
                    "answer": "b, tie"}, headers=h)  # fmt: skip
    assert r.status_code == 200 and f"#{t}" in r.text and "2 &gt; 1 or 1 = 2" in r.text
    # every action is in the audit log, by whom and on what
    from app.models import AuditEvent

    with session_scope() as s:
        rows = s.scalars(select(AuditEvent).order_by(AuditEvent.id))
        events = [(e.action, e.actor_name, e.target) for e in rows if e.actor_name == "root"]
    assert [a for a, _, _ in events] == ["labeler.exclude", "labeler.include", "gold.set"]
    assert events[0][2] == f"labeler {EVIL}" and events[2][2] == f"task {t}"


def test_labelers_see_own_gold_accuracy_only_when_enabled(client):
    ids = _crowd()
    admin = auth(make_user("root", "admin"))
    token = make_user("viewer")
    assert client.get("/api/v1/me/gold", headers=auth(token)).json() == {"shown": False}
    assert "gold-accuracy" not in client.get("/label", headers=auth(token)).text
    r = client.put("/api/v1/quality/settings", json={"show_gold_accuracy": True}, headers=admin)
    assert r.status_code == 200
    assert client.get("/api/v1/me/gold", headers=auth(token)).json()["answered"] == 0
    assert 'id="gold-accuracy"' in client.get("/label", headers=auth(token)).text
    api = client.get(f"/api/v1/labelers/{ids['good1']}", headers=admin).json()
    assert api["gold_accuracy"] == 1.0 and api["lineage"]["snapshots"] == []


def test_cli_list_pause_resume_clear_flag():
    from typer.testing import CliRunner

    from app.cli import _discover, root

    _discover()
    ids = _crowd()
    runner = CliRunner()
    r = runner.invoke(root, ["labelers", "list"])
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.startswith(EVIL))
    assert "gold,agreement,position,fast" in line and "0% (5)" in line
    assert runner.invoke(root, ["labelers", "pause", "good1"]).exit_code == 0
    with session_scope() as s:
        assert service.state(s, ids["good1"]).paused
    assert runner.invoke(root, ["labelers", "resume", "good1"]).exit_code == 0
    assert runner.invoke(root, ["labelers", "clear-flag", EVIL]).exit_code == 0
    after = runner.invoke(root, ["labelers", "list"]).output.splitlines()
    assert next(x for x in after if x.startswith(EVIL)).split()[-2:] == ["-", "-"]  # no flags
    r = runner.invoke(root, ["labelers", "pause", "nobody"])
    assert r.exit_code == 1 and "does not exist" in r.output
