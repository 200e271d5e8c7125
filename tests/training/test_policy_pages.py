"""The policy run form (algorithm fields from the pydantic models) and the gate card on the run
page, tried as an admin would and as a hostile one would."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db import session_scope
from app.models import Run, RunKind, RunStatus
from tests.admin.test_pages import _admin, _csrf

EVIL = "<script>alert(1)</script>"


def test_form_shows_every_algorithm_and_starts_the_chosen_one(client):  # type: ignore[no-untyped-def]
    h = _admin(client)
    page = client.get("/admin/runs", headers=h).text
    for algorithm in ("ppo", "rloo", "grpo", "dpo"):
        assert f'data-algorithm="{algorithm}"' in page and f'<option value="{algorithm}"' in page
    assert 'name="grpo.loss_type"' in page and 'name="dpo.beta"' in page
    assert "/static/policy_form.js" in page and "95% bootstrap interval" in page
    data = {
        "csrf_token": _csrf(page),
        "kind": "policy",
        "algorithm": "grpo",
        "grpo.beta": "0.2",
        "grpo.loss_type": "dr_grpo",
        "rloo.beta": "not read: another algorithm",
        "kl_max": "3",
        "auto_promote": "1",
    }
    r = client.post("/admin/runs", data=data, headers=h, follow_redirects=False)
    assert r.status_code == 303, r.text
    rid = int(r.headers["location"].rsplit("/", 1)[1])
    with session_scope() as s:
        run = s.get(Run, rid)
        assert run.kind == RunKind.policy and run.status == RunStatus.queued
        p = run.params
        assert p["algorithm"] == "grpo" and p["beta"] == 0.2 and p["loss_type"] == "dr_grpo"
        assert p["kl_max"] == 3.0 and p["auto_promote"] is True


def test_form_rejects_bad_values_without_storing(client):  # type: ignore[no-untyped-def]
    h = _admin(client)
    csrf = _csrf(client.get("/admin/runs", headers=h).text)
    base = {"csrf_token": csrf, "kind": "policy"}
    for form, needle in [
        ({"algorithm": "grpo", "grpo.beta": "0"}, "greater than 0"),
        ({"algorithm": "grpo", "grpo.loss_type": EVIL}, "Input should be"),
        ({"algorithm": EVIL}, "unknown algorithm"),
        ({"algorithm": "rloo", "rloo.per_device_train_batch_size": "6"}, "multiple of"),
        ({"algorithm": "dpo", "dpo.learning_rate": "fast"}, "valid number"),
        ({"algorithm": "ppo", "ppo.kl_coef": "-1"}, "between"),
    ]:
        r = client.post("/admin/runs", data={**base, **form}, headers=h)
        assert r.status_code == 400, (form, r.text[:300])
        assert needle in r.text and EVIL not in r.text
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 0


def test_run_page_draws_the_gate(client):  # type: ignore[no-untyped-def]
    h = _admin(client)
    gate = {
        "gain": {"mean": 0.4, "low": 0.1, "high": 0.7, "n": 3},
        "per_prompt": [[0.1, 0.5], [0.2, 0.1], [-0.3, 0.4]],
        "kl_per_prompt": [0.1, 0.2, 0.3],
        "preference": {
            "accuracy_before": 0.5,
            "accuracy_after": 0.75,
            "margin_mean": 0.2,
            "margin_low": 0.05,
            "margin_high": 0.3,
            "pairs": 4.0,
            "prompts": 3.0,
        },
        "kl": 2.5,
        "kl_max": 1.0,
    }
    with session_scope() as s:
        run = Run(
            kind=RunKind.policy,
            params={"algorithm": "dpo"},
            status=RunStatus.succeeded,
            metrics={"gate": gate, "gate_passed": False, "gate_reason": f"KL {EVIL}"},
        )
        s.add(run)
        s.flush()
        rid = run.id
    html = client.get(f"/admin/runs/{rid}", headers=h).text
    assert 'id="gate"' in html and "not passed" in html
    assert "95% CI [+0.1000, +0.7000]" in html and "KL to reference 2.5000" in html
    assert html.count('class="dot"') + html.count('class="bad"') >= 5
    assert "preference accuracy 0.500 → 0.750" in html
    assert EVIL not in html and "&lt;script&gt;" in html
    with session_scope() as s:
        s.add(Run(kind=RunKind.reward, params={}, metrics={"gate": "not a dict"}))
    assert client.get(f"/admin/runs/{rid + 1}", headers=h).status_code == 200
