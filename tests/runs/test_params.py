"""One definition of run parameters (ml/params.py): the API, the admin form, the CLI, the jobs."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.admin import forms
from app.cli import GROUPS, _discover, root
from app.db import session_scope
from app.models import Run
from ml import params
from tests.factories import auth, make_user

if "runs" not in GROUPS:
    _discover()


def _runs() -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(Run)) or 0


def test_api_rejects_the_cost_attack_naming_each_field(client) -> None:  # type: ignore[no-untyped-def]
    h = auth(make_user("boss", "admin"))
    attack = {"k": 1000, "max_new_tokens": 1000000, "prompts": 1e9}
    r = client.post("/api/v1/runs", json={"kind": "generate", "params": attack}, headers=h)
    assert r.status_code == 422, r.text
    locs = {tuple(i["loc"]) for i in r.json()["detail"]}
    assert locs == {("body", "params", f) for f in ("k", "max_new_tokens", "prompts")}
    for body in (
        {"kind": "reward", "params": {"learning_rate": "fast"}},
        {"kind": "reward", "params": {"no_such_param": 1}},
        {"kind": "ppo", "params": {"num_ppo_steps": 10**9}},
        {"kind": "ppo", "params": {"device": "tpu"}},
        {"kind": "reward", "params": {"lora_r": -1}},
        {"kind": "generate", "params": {"versions": "a,b"}},
    ):
        r = client.post("/api/v1/runs", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        (name,) = body["params"]
        assert any(i["loc"][:3] == ["body", "params", name] for i in r.json()["detail"]), r.text
    assert _runs() == 0
    ok = {"kind": "reward", "params": {"batch_size": 4, "max_length": 256, "lora_r": 8}}
    r = client.post("/api/v1/runs", json=ok, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["params"] == {"per_device_train_batch_size": 4, "max_length": 256, "lora_r": 8}


def test_form_is_rendered_from_the_models_and_validated_by_them(client) -> None:  # type: ignore[no-untyped-def]
    reward = {f.name: f for f in forms.FIELDS["reward"]}
    info = params.RewardParams.model_fields["max_length"]
    assert reward["max_length"].default is info.default is None  # one default: by device
    assert "blank = 512 on CPU, 1024 on a GPU" in info.description
    assert (reward["max_length"].lo, reward["max_length"].hi) == (16, 131_072)
    assert reward["max_length"].help == info.description
    assert reward["dtype"].choices == ("auto", "float32", "bfloat16", "float16")
    generate = {f.name: f for f in forms.FIELDS["generate"]}
    assert generate["k"].hi == 9 and generate["prompts"].hi == 100_000
    assert forms.parse("generate", {"k": "3", "prompts": ""}) == {"k": 3}
    with pytest.raises(forms.FormError, match="Completions per prompt.*between 2 and 9"):
        forms.parse("generate", {"k": "1000"})
    page = client.get("/admin/runs", headers=auth(make_user("boss", "admin"))).text
    assert 'name="lora_r"' in page and 'name="max_length"' in page and "<select" in page


def test_cli_param_is_parsed_by_the_model() -> None:
    runner = CliRunner()
    out = runner.invoke(root, ["runs", "start", "generate", "-p", "k=1000"])
    assert out.exit_code == 1 and "k:" in out.output and "9" in out.output
    out = runner.invoke(root, ["runs", "start", "ppo", "-p", "steps=4", "-p", "lora_r=8"])
    assert out.exit_code == 0, out.output
    with session_scope() as s:
        run = s.scalars(select(Run)).one()
        assert run.params == {"num_ppo_steps": 4, "lora_r": 8, "algorithm": "ppo"}


def test_scheduler_params_validate() -> None:
    # what the scheduler queues must pass the same models
    params.parse("reward", {"max_judgment_id": 7, "new_judgments": 3, "trigger": "x", "auto": True})
    params.parse("ppo", {"reward_version_id": 2, "trigger": "reward model r ready", "auto": True})


def test_run_page_shows_where_a_run_ran(client) -> None:  # type: ignore[no-untyped-def]
    from app.models import RunKind, RunStatus

    with session_scope() as s:
        run = Run(
            kind=RunKind.reward,
            status=RunStatus.succeeded,
            params={},
            metrics={"device": "cuda:0", "dtype": "bfloat16", "processes": 2, "lora_r": 16},
        )
        s.add(run)
        s.flush()
        rid = run.id
    html = client.get(f"/admin/runs/{rid}", headers=auth(make_user("boss", "admin"))).text
    compute = html[html.index('id="run-compute"') :].split("</p>")[0]
    assert "cuda:0" in compute and "bfloat16" in compute and "2 processes" in compute
    assert "LoRA r=16" in compute
