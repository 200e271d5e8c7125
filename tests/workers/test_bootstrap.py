"""The first policy: copied from PREFLOOP_POLICY_MODEL into the store once, never downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.config import get_settings
from app.db import session_scope
from app.models import ModelStatus, ModelVersion
from workers.bootstrap_policy import BootstrapError, ensure_active_policy


def _settings(policy_model: str):  # type: ignore[no-untyped-def]
    return get_settings().model_copy(update={"policy_model": policy_model})


def test_policy_model_dir_is_copied_into_store_once(tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    s = _settings(str(tiny_policy_dir))
    first = ensure_active_policy(s)
    assert first is not None and first.status == ModelStatus.active
    assert Path(first.path).parent == s.models_dir.resolve()
    assert (Path(first.path) / "config.json").is_file() and Path(first.path) != tiny_policy_dir
    assert ensure_active_policy(s).id == first.id  # type: ignore[union-attr]
    with session_scope() as db:  # no active version left: the stored copy is reused
        db.get(ModelVersion, first.id).status = ModelStatus.retired  # type: ignore[union-attr]
    again = ensure_active_policy(s)
    assert again is not None and again.id == first.id and again.status == ModelStatus.active
    with session_scope() as db:
        assert db.scalar(select(func.count()).select_from(ModelVersion)) == 1


@pytest.mark.parametrize(
    ("ref", "message"),
    [("./no/such/dir", "not a model directory"), ("someone/not-cached-model", "never downloads")],
)
def test_unusable_policy_model_is_a_clear_error(ref: str, message: str) -> None:
    with pytest.raises(BootstrapError, match=message):
        ensure_active_policy(_settings(ref))
