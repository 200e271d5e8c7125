"""Compute and LoRA parameters for rloo, grpo and dpo (as for ppo): the API and the form take
them, a run records where it ran, a device the worker lacks fails clearly, and a LoRA run stores
an adapter that is activated (merged), served and rolled back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db import session_scope
from app.models import ModelKind, ModelStatus, ModelVersion, Run, RunKind, RunStatus
from app.models_registry import service as registry
from tests.factories import auth, make_user
from tests.training.conftest import run_job
from tests.training.synth import seed_polite_preferences

CHEAP = {"max_heldout": 4, "eval_samples_per_prompt": 1, "auto_promote": False, "seed": 0}
GROUP = {**CHEAP, "learning_rate": 1e-3, "steps": 2, "batch_size": 4, "num_generations": 2}
CONFIGS = {
    "rloo": {**GROUP, "max_new_tokens": 8},
    "grpo": {**GROUP, "max_new_tokens": 8},
    "dpo": {**CHEAP, "learning_rate": 1e-3, "batch_size": 8, "max_length": 128},
}
LORA = {"lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0}


def _served(token: str) -> str:
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app()) as client:
        r = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hello"}], "max_tokens": 4},
            headers=auth(token),
        )
        assert r.status_code == 200, r.text
        return str(r.json()["model"])


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["rloo", "grpo", "dpo"])
def test_lora_run_stores_adapter_is_served_merged_and_rolls_back(
    algorithm, ready_reward, active_tiny_policy, tiny_policy_dir
):  # type: ignore[no-untyped-def]
    seed_polite_preferences(n_prompts=16, tasks_per_prompt=1)
    run = run_job(RunKind.policy, {"algorithm": algorithm, **CONFIGS[algorithm], **LORA})
    assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    m = run.metrics
    assert (m["algorithm"], m["lora_r"]) == (algorithm, 4)
    assert (m["device"], m["dtype"], m["processes"]) == ("cpu", "float32", 1)
    assert "cpu, float32, 1 process(es)" in run.log_tail
    # only the adapter trains: a small share of the tiny model's parameters
    from transformers import AutoModelForCausalLM

    full = AutoModelForCausalLM.from_pretrained(tiny_policy_dir)
    assert 0 < m["trainable_params"] < 0.2 * sum(p.numel() for p in full.parameters())
    assert m["kl_to_ref"] is not None and m["gate"]["kl_per_prompt"]
    with session_scope() as s:
        new = s.get(ModelVersion, m["policy_version_new_id"])
        new_id, new_name, path = new.id, new.version, Path(new.path)
        assert new.status == ModelStatus.ready and new.parent_id == active_tiny_policy
        old_name = s.get(ModelVersion, active_tiny_policy).version
    # stored as LoRA reward/PPO versions are: the adapter and a pointer to its base
    assert (path / "adapter" / "adapter_config.json").exists()
    assert not (path / "config.json").exists()
    lora = json.loads((path / "lora.json").read_text())
    assert lora["base"] == str(tiny_policy_dir.resolve()) and lora["r"] == 4
    token = make_user("reader", "researcher")
    with session_scope() as s:
        registry.activate(s, new_id)  # writes the merged copy first
    assert (path / "config.json").exists() and (path / "adapter").is_dir()
    assert _served(token) == new_name
    with session_scope() as s:  # rollback
        registry.activate(s, active_tiny_policy)
    with session_scope() as s:
        assert s.get(ModelVersion, new_id).status == ModelStatus.retired
    assert _served(token) == old_name


@pytest.mark.slow
def test_full_fine_tune_records_compute_for_every_algorithm(
    ready_reward, active_tiny_policy, client
):  # type: ignore[no-untyped-def]
    seed_polite_preferences(n_prompts=16, tasks_per_prompt=1)
    admin = auth(make_user("boss", "admin"))
    for algorithm in ("rloo", "dpo"):  # grpo shares rloo's code path (ml/policy/online.py)
        params = {"algorithm": algorithm, **CONFIGS[algorithm], "device": "cpu", "dtype": "auto"}
        run = run_job(RunKind.policy, params)
        assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
        m = run.metrics
        assert (m["device"], m["dtype"], m["processes"], m["lora_r"]) == ("cpu", "float32", 1, 0)
        with session_scope() as s:
            path = Path(s.get(ModelVersion, m["policy_version_new_id"]).path)
        assert (path / "config.json").exists() and not (path / "adapter").exists()
        html = client.get(f"/admin/runs/{run.id}", headers=admin).text
        assert 'id="run-compute"' in html and "float32" in html


@pytest.mark.parametrize("algorithm", ["ppo", "rloo", "grpo", "dpo"])
def test_a_device_this_worker_lacks_fails_clearly(algorithm, active_tiny_policy, monkeypatch):
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    for params, needle in [
        ({"device": "cuda"}, "no CUDA device"),
        ({"device": "cpu", "dtype": "float16"}, "float16 cannot be trained on CPU"),
        ({"num_processes": 3}, "num_processes=3: this machine has 2 CPU cores"),
    ]:
        run = run_job(RunKind.policy, {"algorithm": algorithm, **params})
        assert run.status == RunStatus.failed and needle in run.error, (params, run.error)
    with session_scope() as s:  # failed before anything was registered
        assert s.scalar(select(func.count()).select_from(ModelVersion)) == 1
        assert registry.active_version(s, ModelKind.policy).id == active_tiny_policy


def test_api_takes_compute_and_lora_for_every_algorithm(client):  # type: ignore[no-untyped-def]
    h = auth(make_user("boss", "admin"))
    given = {"lora_r": 8, "lora_alpha": 32, "device": "cuda:1", "dtype": "bfloat16"}
    for algorithm in ("rloo", "grpo", "dpo"):
        params = {"algorithm": algorithm, **given, "num_processes": 2}
        r = client.post("/api/v1/runs", json={"kind": "policy", "params": params}, headers=h)
        assert r.status_code == 201, r.text
        assert r.json()["params"] == params
    for bad, field in [
        ({"lora_r": -1}, "lora_r"),
        ({"lora_r": 4096}, "lora_r"),
        ({"lora_alpha": 0}, "lora_alpha"),
        ({"lora_dropout": 0.95}, "lora_dropout"),
        ({"lora_target_modules": ["q"] * 65}, "lora_target_modules"),
        ({"device": "tpu"}, "device"),
        ({"dtype": "int8"}, "dtype"),
        ({"num_processes": 0}, "num_processes"),
        ({"num_processes": 65}, "num_processes"),
        ({"accelerate_config": "../x.yaml"}, "accelerate_config"),
    ]:
        body = {"kind": "policy", "params": {"algorithm": "grpo", **bad}}
        r = client.post("/api/v1/runs", json=body, headers=h)
        assert r.status_code == 422, (bad, r.text)
        assert field in r.text
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 3


def test_run_form_shows_compute_and_lora_for_every_algorithm(client):  # type: ignore[no-untyped-def]
    from tests.admin.test_pages import _admin

    page = client.get("/admin/runs", headers=_admin(client)).text
    for algorithm in ("ppo", "rloo", "grpo", "dpo"):
        for field in ("device", "dtype", "num_processes", "lora_r"):
            assert f'name="{algorithm}.{field}"' in page, (algorithm, field)
