"""The audit trail: actions recorded with who/when/what/where, append-only in the database,
/admin/audit filters and exports, nothing in the app can change an event."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from app.audit import record
from app.cli import GROUPS, _discover, root
from app.db import session_scope
from app.main import _routers
from app.models import AuditEvent, utcnow
from tests.factories import auth, comparison_lines, make_user

if "runs" not in GROUPS:
    _discover()
runner = CliRunner()


def _events(action: str | None = None) -> list[AuditEvent]:
    with session_scope() as s:
        q = select(AuditEvent).order_by(AuditEvent.id)
        if action:
            q = q.where(AuditEvent.action == action)
        return list(s.scalars(q))


def _login(client, name: str, password: str = "password123"):  # type: ignore[no-untyped-def]
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    return token


def _csrf(client, path: str = "/admin/runs") -> str:  # type: ignore[no-untyped-def]
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def test_the_database_refuses_to_change_or_delete_an_event():
    with session_scope() as s:
        event = record(s, "someone", "guidelines.edit", "guidelines", {"chars": 3}, "10.0.0.1")
    for statement in (
        update(AuditEvent).values(actor_name="someone else"),
        delete(AuditEvent),
    ):
        with pytest.raises(DBAPIError, match="append-only"), session_scope() as s:
            s.execute(statement)
    with pytest.raises(DBAPIError, match="append-only"), session_scope() as s:
        s.execute(text("UPDATE audit_log SET action = 'run.start'"))
    with pytest.raises(DBAPIError, match="append-only"), session_scope() as s:  # through the ORM
        s.get(AuditEvent, event.id).target = "forged"  # type: ignore[union-attr]
    [kept] = _events()
    assert (kept.actor_name, kept.target, kept.ip) == ("someone", "guidelines", "10.0.0.1")


def test_record_refuses_unknown_actions_and_cleans_nul():
    with pytest.raises(ValueError, match="unknown audit action"), session_scope() as s:
        record(s, None, "run.delete", "run 1")
    with session_scope() as s:
        record(s, None, "run.start", "run\x001", {"k\x00": ["a\x00"]})
    [e] = _events()
    assert e.actor_name.startswith("cli") and e.actor_id is None
    assert e.target == "run\ufffd1" and e.details == {"k\ufffd": ["a\ufffd"]}


def test_no_route_can_change_the_trail():
    routes = [
        (m, r.path)
        for router in _routers()
        for r in router.routes
        if isinstance(r, APIRoute) and "audit" in r.path
        for m in r.methods
    ]
    assert routes and all(m in ("GET", "HEAD") for m, _ in routes), routes


def test_api_actions_are_recorded_with_actor_and_address(client):
    admin = make_user("boss", "admin")
    researcher = make_user("rita", "researcher")
    h = auth(admin)
    r = client.post("/api/v1/runs", json={"kind": "generate", "params": {"prompts": 2}}, headers=h)
    run_id = r.json()["id"]
    assert client.post(f"/api/v1/runs/{run_id}/cancel", headers=h).status_code == 200
    assert client.put("/api/v1/guidelines", json={"markdown": "Be kind."}, headers=h).is_success
    assert client.post(
        "/api/v1/users", json={"name": "lab", "role": "labeler"}, headers=h
    ).is_success
    assert client.post("/api/v1/tokens", json={"user": "lab", "name": "ci"}, headers=h).is_success
    r = client.post(
        "/api/v1/import/comparisons",
        content=comparison_lines(3),
        headers=h | {"content-type": "application/x-ndjson"},
    )
    assert r.status_code == 201
    assert client.get("/api/v1/exports/preferences", headers=auth(researcher)).status_code == 200
    # a refused action is not recorded
    assert client.post("/api/v1/runs/99999/cancel", headers=h).status_code == 404

    by_action = {e.action: e for e in _events() if e.actor_name in ("boss", "rita")}
    assert set(by_action) == {
        "run.start", "run.cancel", "guidelines.edit", "user.create", "token.create",
        "import.comparisons", "export.preferences",
    }  # fmt: skip
    start = by_action["run.start"]
    assert start.target == f"run {run_id}" and start.details["params"] == {"prompts": 2}
    assert start.ip == "testclient" and start.actor_id is not None
    assert by_action["run.cancel"].details["status"] == "cancelled"
    assert by_action["guidelines.edit"].details["chars"] == len("Be kind.")
    assert by_action["user.create"].target == "lab"
    assert by_action["user.create"].details == {"role": "labeler", "password": "generated"}
    assert by_action["token.create"].details["name"] == "ci"
    assert "token" not in json.dumps(by_action["token.create"].details).replace("token_id", "")
    imported = by_action["import.comparisons"].details
    assert imported["tasks_created"] == 3 and imported["rejected"] == 0
    export = by_action["export.preferences"]
    assert export.actor_name == "rita" and export.details["shape"] == "trl"


def test_model_activation_and_rollback_are_recorded(client, tiny_policy_dir):  # type: ignore[no-untyped-def]
    from tests.workers.support import store_tiny

    admin = make_user("boss", "admin")
    v1, name1 = store_tiny(tiny_policy_dir)
    v2, name2 = store_tiny(tiny_policy_dir, activate=False)
    assert client.post(f"/api/v1/models/{v2}/activate", headers=auth(admin)).status_code == 200
    assert client.post(f"/api/v1/models/{v1}/activate", headers=auth(admin)).status_code == 200
    # activating the active version again changes nothing and records nothing
    assert client.post(f"/api/v1/models/{v1}/activate", headers=auth(admin)).status_code == 200
    forward, back = _events("model.activate")
    assert (forward.target, forward.details["previous"], forward.details["rollback"]) == (
        name2, name1, False,
    )  # fmt: skip
    assert (back.target, back.details["previous"], back.details["rollback"]) == (name1, name2, True)


def test_page_actions_are_recorded(client):
    make_user("boss", "admin")
    _login(client, "boss")
    token = _csrf(client)
    r = client.post(
        "/admin/runs",
        data={"csrf_token": token, "kind": "generate", "prompts": "3"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    run_id = int(r.headers["location"].rsplit("/", 1)[1])
    r = client.post(
        f"/admin/runs/{run_id}/cancel", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    r = client.post(
        "/admin/guidelines",
        data={"csrf_token": token, "markdown": "Rule 1"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    actions = [(e.action, e.actor_name) for e in _events() if e.actor_name == "boss"]
    assert actions == [("run.start", "boss"), ("run.cancel", "boss"), ("guidelines.edit", "boss")]


def test_cli_actions_are_recorded_as_the_os_account(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_bytes(comparison_lines(2))
    assert runner.invoke(root, ["import", "comparisons", str(f)]).exit_code == 0
    assert runner.invoke(root, ["runs", "start", "generate", "-p", "prompts=1"]).exit_code == 0
    assert runner.invoke(root, ["users", "create", "carol", "--role", "researcher"]).exit_code == 0
    events = _events()
    assert [e.action for e in events] == ["import.comparisons", "run.start", "user.create"]
    assert all(e.actor_name.startswith("cli") and e.ip is None for e in events)
    assert events[0].target == str(f) and events[0].details["tasks_created"] == 2


def _seed() -> None:
    now = utcnow()
    with session_scope() as s:
        for i, (who, action, days_ago) in enumerate(
            [
                ("ann", "run.start", 3),
                ("ann", "run.cancel", 2),
                ("bob", "guidelines.edit", 1),
                ("<script>alert(1)</script>", "user.create", 0),
                ("=cmd|' /C calc'!A0", "run.start", 0),
            ]
        ):
            e = record(s, who, action, f"target {i}", {"i": i})
            e.at = now - timedelta(days=days_ago)


def test_audit_page_filters_and_escapes(client):
    make_user("boss", "admin")
    _seed()
    _login(client, "boss")
    page = client.get("/admin/audit")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    only_ann = client.get("/admin/audit", params={"actor": "ann"}).text
    assert "target 0" in only_ann and "target 1" in only_ann and "target 2" not in only_ann
    runs = client.get("/admin/audit", params={"action": "run"}).text
    assert "target 0" in runs and "target 4" in runs and "target 2" not in runs
    day = (utcnow() - timedelta(days=1)).date().isoformat()
    one_day = client.get("/admin/audit", params={"since": day, "until": day}).text
    assert "target 2" in one_day and "target 1" not in one_day and "target 3" not in one_day
    bad = client.get("/admin/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text
    assert client.get("/admin/audit", params={"action": "run%"}).status_code == 422
    # labelers and researchers do not see it
    assert (
        client.get("/api/v1/audit", headers=auth(make_user("r", "researcher"))).status_code == 403
    )


def test_api_pages_and_exports(client):
    admin = make_user("boss", "admin")
    _seed()
    h = auth(admin)
    first = client.get("/api/v1/audit", params={"limit": 2}, headers=h).json()
    assert [e["target"] for e in first["events"]] == ["target 4", "target 3"]
    older = client.get(
        "/api/v1/audit", params={"limit": 2, "before_id": first["next_before_id"]}, headers=h
    ).json()
    assert [e["target"] for e in older["events"]] == ["target 2", "target 1"]
    assert client.get("/api/v1/audit", params={"until": "2020-13-01"}, headers=h).status_code == 422

    r = client.get("/api/v1/audit/export", params={"format": "csv", "action": "run"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["target"] for row in rows] == ["target 0", "target 1", "target 4"]
    assert rows[2]["actor"].startswith("'=")  # no formula for spreadsheets
    assert json.loads(rows[0]["details"]) == {"i": 0}
    r = client.get("/api/v1/audit/export", params={"format": "jsonl", "actor": "bob"}, headers=h)
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [(x["actor"], x["action"]) for x in lines] == [("bob", "guidelines.edit")]
    # the downloads are themselves on the trail
    exports = _events("audit.export")
    assert [e.details["format"] for e in exports] == ["csv", "jsonl"]
    assert exports[1].details["filters"] == {"actor": "bob"}


def test_export_streams_more_than_one_batch():
    from app.audit.service import Filters, iter_export

    with session_scope() as s:
        for i in range(7):
            record(s, "ann", "run.start", f"run {i}")
    body = b"".join(iter_export(Filters(), "jsonl", batch=3))
    assert [json.loads(x)["target"] for x in body.splitlines()] == [f"run {i}" for i in range(7)]
    empty = b"".join(iter_export(Filters(actor="nobody"), "csv", batch=3)).decode()
    assert empty.splitlines() == ["id,at,actor_id,actor,action,target,details,ip"]


def test_migration_0003_downgrades_and_upgrades(tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, inspect

    from app.ops.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0003")
    command.downgrade(cfg, "0002")
    engine = create_engine(url)
    assert "audit_log" not in inspect(engine).get_table_names()
    command.upgrade(cfg, "0003")
    tables = inspect(engine).get_table_names()
    assert {"audit_log", "login_throttle"} <= set(tables)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (at, actor_name, action, target, details) "
                "VALUES ('2026-01-01', 'a', 'run.start', '', '{}')"
            )
        )
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    engine.dispose()


def test_webhook_and_arena_actions_are_recorded(client, tiny_policy_dir):  # type: ignore[no-untyped-def]
    from tests.workers.support import store_tiny

    h = auth(make_user("boss", "admin"))
    page = client.get("/admin/webhooks", headers=h).text
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    form = {"csrf_token": csrf, "url": "https://hooks.example.com/in?token=s3cret",
            "events": ["run.failed"]}  # fmt: skip
    assert client.post("/admin/webhooks", data=form, headers=h).status_code == 201
    [created] = _events("webhook.create")
    assert created.details["url"] == "https://hooks.example.com/in"  # no query: it may be secret
    assert "s3cret" not in json.dumps(created.details)
    eid = int(created.target.split()[-1])
    client.post(f"/admin/webhooks/{eid}/active", data={"csrf_token": csrf, "active": "0"},
                headers=h)  # fmt: skip
    client.post(f"/admin/webhooks/{eid}/active", data={"csrf_token": csrf, "active": "1"},
                headers=h)  # fmt: skip
    client.post(f"/admin/webhooks/{eid}/test", data={"csrf_token": csrf}, headers=h)
    assert len(_events("webhook.disable")) == len(_events("webhook.enable")) == 1
    assert len(_events("webhook.test")) == 1

    va, _ = store_tiny(tiny_policy_dir)
    vb, _ = store_tiny(tiny_policy_dir, activate=False)
    r = client.post("/api/v1/arena/campaigns", json={"versions": [str(va), str(vb)]}, headers=h)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert client.post(f"/api/v1/arena/campaigns/{cid}/stop", headers=h).status_code == 200
    [start], [stop] = _events("arena.campaign_start"), _events("arena.campaign_stop")
    assert start.details["campaign_id"] == stop.details["campaign_id"] == cid
    assert start.actor_name == "boss"
