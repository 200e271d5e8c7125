"""LoRA end to end on tiny models: reward and PPO runs store adapters with a pointer to their
base; activation writes the merged copy that /v1 serves; rollback activates the old version."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from app.db import session_scope
from app.models import ModelKind, ModelStatus, ModelVersion, RunKind, RunStatus
from app.models_registry import service as registry
from tests.factories import auth, make_user
from tests.serving.support import settings_env
from tests.training.conftest import run_job
from tests.training.synth import seed_polite_preferences

LORA = {"lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0}
HELLO = [{"role": "user", "content": "hello"}]


def _chat(client, token: str) -> str:  # type: ignore[no-untyped-def]
    r = client.post(
        "/v1/chat/completions",
        json={"messages": HELLO, "max_tokens": 4, "temperature": 0},
        headers=auth(token),
    )
    assert r.status_code == 200, r.text
    return r.json()["model"]


@pytest.mark.slow
def test_lora_train_store_activate_serve_rollback(active_tiny_policy, tiny_policy_dir):
    from fastapi.testclient import TestClient

    from app.main import create_app

    seed_polite_preferences(n_prompts=24, tasks_per_prompt=2, k=3)
    rm_run = run_job(
        RunKind.reward,
        {**LORA, "learning_rate": 2e-3, "num_train_epochs": 2, "batch_size": 8, "max_length": 256},
    )
    assert rm_run.status == RunStatus.succeeded, (rm_run.error, rm_run.log_tail)
    m = rm_run.metrics
    assert (m["lora_r"], m["device"], m["dtype"], m["processes"]) == (8, "cpu", "float32", 1)
    with session_scope() as s:
        rm = s.get(ModelVersion, m["reward_version_id"])
        rm_path = Path(rm.path)
    # the store keeps the adapter and a pointer to its base, not a second full model
    assert (rm_path / "adapter" / "adapter_config.json").exists()
    assert not (rm_path / "config.json").exists()
    lora = json.loads((rm_path / "lora.json").read_text())
    assert lora["base"] == str(tiny_policy_dir.resolve())
    adapter = json.loads((rm_path / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == lora["base"] and adapter["r"] == 8

    ppo = run_job(
        RunKind.ppo,
        {
            **LORA,
            "reward_version_id": rm.id,
            "learning_rate": 1e-3,
            "num_ppo_steps": 2,
            "batch_size": 8,
            "num_ppo_epochs": 1,
            "response_length": 8,
            "max_heldout": 4,
            "eval_samples_per_prompt": 1,
            "auto_promote": False,
        },
    )
    assert ppo.status == RunStatus.succeeded, (ppo.error, ppo.log_tail)
    pm = ppo.metrics
    assert pm["lora_r"] == 8 and pm["kl_to_ref"] is not None  # reference: adapter disabled
    with session_scope() as s:
        new = s.get(ModelVersion, pm["policy_version_new_id"])
        new_id, new_name, new_path = new.id, new.version, Path(new.path)
        assert new.status == ModelStatus.ready
    assert (new_path / "adapter").is_dir() and not (new_path / "config.json").exists()

    labeler = make_user("lab")
    with settings_env(serving_reload_seconds="0"), TestClient(create_app()) as client:
        with session_scope() as s:
            registry.activate(s, new_id)  # verifies by loading: writes the merged copy first
        assert (new_path / "config.json").exists() and (new_path / "adapter").is_dir()
        assert _chat(client, labeler) == new_name
        # the merged copy is a plain transformers dir (what `vllm serve <dir>` reads)
        from transformers import AutoModelForCausalLM

        AutoModelForCausalLM.from_pretrained(new_path)
        with session_scope() as s:
            old = registry.activate(s, active_tiny_policy)  # rollback
            old_name = old.version
            assert s.get(ModelVersion, new_id).status == ModelStatus.retired
            assert registry.active_version(s, ModelKind.policy).id == active_tiny_policy
        # the web process swaps in the rolled-back policy in the background, then serves it
        served = [_chat(client, labeler)]
        for _ in range(100):
            if served[-1] == old_name:
                break
            time.sleep(0.1)
            served.append(_chat(client, labeler))
        assert served[-1] == old_name and set(served) <= {new_name, old_name}
