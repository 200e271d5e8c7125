"""Admin pages: rendering, role restrictions, escaping and form validation."""

from __future__ import annotations

import re
from datetime import timedelta

from app.db import session_scope
from app.models import Judgment, ModelKind, ModelStatus, ModelVersion, Run, RunKind, utcnow
from tests.factories import auth, make_tasks, make_user

EVIL = '<script>alert("x")</script>'


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert m, "page has no csrf meta tag"
    return m.group(1)


def _admin(client):  # type: ignore[no-untyped-def]
    token = make_user("root", "admin")
    return auth(token)


def test_pages_need_admin(client):
    headers = {
        "labeler": auth(make_user("lab", "labeler")),
        "researcher": auth(make_user("res", "researcher")),
    }
    for path in ("/admin", "/admin/runs", "/admin/models", "/admin/runs/1"):
        assert client.get(path).status_code == 401, path
        for role, h in headers.items():
            assert client.get(path, headers=h).status_code == 403, (path, role)
    for path in ("/admin/runs", "/admin/runs/1/cancel", "/admin/models/1/activate"):
        r = client.post(path, data={"csrf_token": "x"}, headers=headers["labeler"])
        assert r.status_code == 403, path


def test_dashboard_counts_and_chart(client):
    h = _admin(client)
    tasks = make_tasks(3, k=2)
    make_user("ann")
    with session_scope() as s:
        from sqlalchemy import select

        from app.models import User

        ann = s.scalar(select(User.id).where(User.name == "ann"))
        s.add(Judgment(task_id=tasks[0], user_id=ann, ranking=[[1], [2]]))
        s.add(
            Judgment(
                task_id=tasks[1],
                source="import",
                external_id="e1",
                ranking=[[3], [4]],
                created_at=utcnow() - timedelta(days=2),
            )
        )
    r = client.get("/admin", headers=h)
    assert r.status_code == 200
    html = r.text
    assert re.search(r'id="stat-open">3<', html)
    assert re.search(r'id="stat-labelers">1<', html)
    today = utcnow().date().isoformat()
    assert f"<title>{today}: 1</title>" in html
    two_days = (utcnow() - timedelta(days=2)).date().isoformat()
    assert f"<title>{two_days}: 1</title>" in html
    assert 'href="/admin/guidelines"' in html and 'href="/research"' in html
    assert "Reward run:" in html and "<strong>off</strong>" in html  # test settings: no schedule


def test_run_pages_escape_params_and_log(client):
    h = _admin(client)
    with session_scope() as s:
        run = Run(
            kind=RunKind.reward,
            params={"note": EVIL},
            log_tail=f"step 1 {EVIL}\n",
            metrics={"eval_accuracy": 0.75, "curves": {"loss": [[1, 0.7], [2, 0.5]]}},
            error=EVIL,
            progress_step=3,
            progress_total=10,
        )
        s.add(run)
        s.flush()
        rid = run.id
    for path in ("/admin/runs", f"/admin/runs/{rid}"):
        html = client.get(path, headers=h).text
        assert EVIL not in html, path
        assert "&lt;script&gt;" in html or "\\u003cscript\\u003e" in html
    detail = client.get(f"/admin/runs/{rid}", headers=h).text
    assert 'aria-valuenow="30"' in detail
    assert "eval_accuracy" in detail and "0.75" in detail
    assert "/static/charts.js" in detail and "/static/admin.js" in detail
    assert client.get("/admin/runs/999", headers=h).status_code == 404


def test_start_run_form_rejects_bad_values(client):
    h = _admin(client)
    csrf = _csrf(client.get("/admin/runs", headers=h).text)
    r = client.post(
        "/admin/runs",
        data={"csrf_token": csrf, "kind": "ppo", "kl_coef": "lots"},
        headers=h,
    )
    assert r.status_code == 400
    assert "KL coefficient" in r.text and "lots" in r.text
    r = client.post(
        "/admin/runs", data={"csrf_token": csrf, "kind": "reward", "eval_fraction": "2"}, headers=h
    )
    assert r.status_code == 400 and "between" in r.text
    r = client.post("/admin/runs", data={"csrf_token": csrf, "kind": EVIL}, headers=h)
    assert r.status_code == 400 and EVIL not in r.text
    r = client.post("/admin/runs", data={"csrf_token": "wrong", "kind": "reward"}, headers=h)
    assert r.status_code == 403
    with session_scope() as s:
        from sqlalchemy import func, select

        assert s.scalar(select(func.count()).select_from(Run)) == 0


def test_models_page_lists_versions(client):
    h = _admin(client)
    with session_scope() as s:
        s.add(
            ModelVersion(
                version="policy-0001",
                kind=ModelKind.policy,
                status=ModelStatus.active,
                path="/m/p1",
            )
        )
        s.add(
            ModelVersion(
                version="reward-0001",
                kind=ModelKind.reward,
                status=ModelStatus.ready,
                path="/m/r1",
                metrics={"eval_accuracy": 0.875},
            )
        )
    html = client.get("/admin/models", headers=h).text
    assert "policy-0001" in html and "reward-0001" in html
    assert "0.875" in html
    # the active version has no activate button, the ready one has
    assert html.count('/activate"') == 1
    assert (
        client.post(
            "/admin/models/999/activate", data={"csrf_token": _csrf(html)}, headers=h
        ).status_code
        == 404
    )


def test_start_and_cancel_a_run_from_the_pages(client):
    h = _admin(client)
    csrf = _csrf(client.get("/admin/runs", headers=h).text)
    r = client.post(
        "/admin/runs",
        data={"csrf_token": csrf, "kind": "ppo", "kl_coef": "0.1", "num_ppo_steps": "4"},
        headers=h,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    rid = int(r.headers["location"].rsplit("/", 1)[1])
    with session_scope() as s:
        run = s.get(Run, rid)
        assert run.kind == RunKind.policy and run.status == "queued"  # kind ppo is an alias
        assert run.params["algorithm"] == "ppo"
        assert run.params["kl_coef"] == 0.1 and run.params["num_ppo_steps"] == 4
        assert run.params["auto_promote"] is False  # unchecked checkbox
    page = client.get(f"/admin/runs/{rid}", headers=h).text
    assert f'action="/admin/runs/{rid}/cancel"' in page
    r = client.post(
        f"/admin/runs/{rid}/cancel", data={"csrf_token": csrf}, headers=h, follow_redirects=False
    )
    assert r.status_code == 303
    with session_scope() as s:
        assert s.get(Run, rid).status == "cancelled"
    assert 'action="/admin/runs/' not in client.get(f"/admin/runs/{rid}", headers=h).text
    again = client.post(f"/admin/runs/{rid}/cancel", data={"csrf_token": csrf}, headers=h)
    assert again.status_code == 409 and "already cancelled" in again.text
    assert (
        client.post("/admin/runs/999/cancel", data={"csrf_token": csrf}, headers=h).status_code
        == 404
    )


def test_activate_and_refuse_versions_from_the_models_page(client, tiny_policy_dir):
    h = _admin(client)
    with session_scope() as s:
        good = ModelVersion(
            version="policy-good", kind=ModelKind.policy, status=ModelStatus.ready,
            path=str(tiny_policy_dir),
        )  # fmt: skip
        gone = ModelVersion(
            version="policy-gone", kind=ModelKind.policy, status=ModelStatus.ready,
            path="/nonexistent/model",
        )  # fmt: skip
        s.add_all([good, gone])
        s.flush()
        good_id, gone_id = good.id, gone.id
    csrf = _csrf(client.get("/admin/models", headers=h).text)
    r = client.post(f"/admin/models/{gone_id}/activate", data={"csrf_token": csrf}, headers=h)
    assert r.status_code == 409 and "missing" in r.text
    r = client.post(
        f"/admin/models/{good_id}/activate",
        data={"csrf_token": csrf},
        headers=h,
        follow_redirects=False,
    )
    assert r.status_code == 303
    with session_scope() as s:
        assert s.get(ModelVersion, good_id).status == ModelStatus.active
        assert s.get(ModelVersion, gone_id).status == ModelStatus.ready
