"""Model store: registration, verified atomic activation, rollback, refusal of broken versions."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import exc, select
from typer.testing import CliRunner

from app.cli import GROUPS, _discover, root
from app.db import session_scope
from app.models import ModelKind, ModelStatus, ModelVersion
from app.models_registry import service as registry
from tests.factories import auth, make_user
from tests.workers.support import store_tiny

if "models" not in GROUPS:
    _discover()
runner = CliRunner()


def _status(version_id: int) -> ModelStatus:
    with session_scope() as s:
        return s.get(ModelVersion, version_id).status  # type: ignore[union-attr]


def _active() -> int | None:
    with session_scope() as s:
        mv = registry.active_version(s, ModelKind.policy)
        return mv.id if mv else None


def _broken_version() -> int:
    name, dest = registry.new_version_path(ModelKind.policy)
    dest.mkdir(parents=True)
    (dest / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": "two"}))
    with session_scope() as s:
        return registry.register_version(s, ModelKind.policy, dest).id


def test_new_version_paths_are_fresh_and_under_the_store() -> None:
    a, pa = registry.new_version_path("policy")
    b, pb = registry.new_version_path("reward")
    assert a != b and a.startswith("policy-") and b.startswith("reward-")
    assert pa.name == a and not pa.exists() and pa.parent == pb.parent


def test_activate_flips_pointer_and_rollback(tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    v1, _ = store_tiny(tiny_policy_dir)
    v2, name2 = store_tiny(tiny_policy_dir, activate=False)
    assert _active() == v1 and _status(v2) == ModelStatus.ready
    with session_scope() as s:
        registry.activate(s, name2)
    assert _active() == v2 and _status(v1) == ModelStatus.retired
    with session_scope() as s:  # rollback = activate the earlier version
        registry.activate(s, v1)
    assert _active() == v1 and _status(v2) == ModelStatus.retired
    with session_scope() as s:
        assert len(registry.list_versions(s, "policy")) == 2


def test_broken_version_is_refused_and_pointer_stays(tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    v1, _ = store_tiny(tiny_policy_dir)
    bad = _broken_version()
    with pytest.raises(registry.RegistryError, match="does not load"):
        with session_scope() as s:
            registry.activate(s, bad)
    assert _active() == v1 and _status(bad) == ModelStatus.ready


@pytest.mark.parametrize("status", [ModelStatus.training, ModelStatus.failed])
def test_unfinished_versions_cannot_be_activated(tiny_policy_dir, status) -> None:  # type: ignore[no-untyped-def]
    v1, _ = store_tiny(tiny_policy_dir)
    v2, _ = store_tiny(tiny_policy_dir, activate=False)
    with session_scope() as s:
        registry.set_status(s, v2, status)
    with pytest.raises(registry.RegistryError, match=status.value):
        with session_scope() as s:
            registry.activate(s, v2)
    assert _active() == v1


def test_database_allows_one_active_policy(tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    store_tiny(tiny_policy_dir)
    v2, _ = store_tiny(tiny_policy_dir, activate=False)
    with pytest.raises(exc.IntegrityError):
        with session_scope() as s:
            s.get(ModelVersion, v2).status = ModelStatus.active  # type: ignore[union-attr]
            s.flush()


def test_failed_run_versions_are_marked_failed(tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    from app.runs.service import create_run

    with session_scope() as s:
        run_id = create_run(s, "reward", {}, None).id
        name, dest = registry.new_version_path("reward")
        mv = registry.register_version(s, "reward", dest, status="training", run_id=run_id)
        assert registry.fail_versions_of_run(s, run_id) == 1
        assert mv.status == ModelStatus.failed


def test_api_lists_and_activates(client, tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    admin, labeler = make_user("boss", "admin"), make_user("lab")
    v1, _ = store_tiny(tiny_policy_dir)
    v2, name2 = store_tiny(tiny_policy_dir, activate=False)
    bad = _broken_version()
    listed = client.get("/api/v1/models", headers=auth(labeler)).json()["versions"]
    assert [v["id"] for v in listed] == [bad, v2, v1]
    assert all(v["path"] is None for v in listed)
    assert client.get("/api/v1/models", headers=auth(admin)).json()["versions"][0]["path"]
    assert client.get("/api/v1/models").status_code == 401
    assert client.post(f"/api/v1/models/{v2}/activate", headers=auth(labeler)).status_code == 403
    r = client.post(f"/api/v1/models/{bad}/activate", headers=auth(admin))
    assert r.status_code == 409 and "does not load" in r.json()["detail"]
    assert _active() == v1
    r = client.post(f"/api/v1/models/{v2}/activate", headers=auth(admin))
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert _active() == v2
    assert client.post("/api/v1/models/99999/activate", headers=auth(admin)).status_code == 404


def test_cli_list_activate_and_refusal(tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    v1, name1 = store_tiny(tiny_policy_dir)
    v2, name2 = store_tiny(tiny_policy_dir, activate=False)
    out = runner.invoke(root, ["models", "list", "--wide"])
    assert out.exit_code == 0 and name1 in out.output and name2 in out.output
    out = runner.invoke(root, ["models", "activate", name2])
    assert out.exit_code == 0, out.output
    assert _active() == v2
    bad = _broken_version()
    out = runner.invoke(root, ["models", "activate", str(bad)])
    assert out.exit_code == 1 and "does not load" in out.output
    assert _active() == v2
    out = runner.invoke(root, ["models", "activate", "no-such-version"])
    assert out.exit_code == 1 and "no model version" in out.output
    with session_scope() as s:
        assert s.scalar(select(ModelVersion.status).where(ModelVersion.id == v1)) == "retired"
