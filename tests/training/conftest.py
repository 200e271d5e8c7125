"""Fixtures for training-job tests: an active tiny policy and a worker that runs one queued run."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import get_settings
from app.db import session_scope
from app.models import ModelKind, Run, RunKind
from app.models_registry import service as registry
from app.runs.service import create_run


@pytest.fixture
def active_tiny_policy(tiny_policy_dir: Path) -> int:
    """Register the tiny policy as a version and activate it; returns its id."""
    with session_scope() as s:
        mv = registry.register_version(s, ModelKind.policy, tiny_policy_dir, base_model="tiny")
        registry.activate(s, mv.id)
        return mv.id


def run_job(kind: RunKind, params: dict) -> Run:
    """Queue a run and let a real worker process it; returns the finished run."""
    from workers.runner import Worker

    with session_scope() as s:
        run_id = create_run(s, kind, params, None).id
    worker = Worker(worker_id="test-worker", settings=get_settings(), fill_queue=False)
    assert worker.tick(), "the worker found no queued run"
    with session_scope() as s:
        return s.get(Run, run_id)  # type: ignore[return-value]
