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


@pytest.fixture(autouse=True)
def _single_thread():  # type: ignore[no-untyped-def]
    """Tiny models train fastest (and least disturbed by a busy CPU) on one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_reward_dir(tiny_policy_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reward model trained once (directly with train_reward) on polite-beats-rude pairs."""
    import random

    import torch

    from ml.reward import RewardRunConfig, train_reward
    from ml.tiny import PROMPTS
    from tests.training.synth import POLITE, RUDE

    rng = random.Random(1)
    rows = [
        {
            "prompt": [{"role": "user", "content": rng.choice(PROMPTS)}],
            "chosen": [{"role": "assistant", "content": rng.choice(POLITE)}],
            "rejected": [{"role": "assistant", "content": rng.choice(RUDE)}],
        }
        for _ in range(96)
    ]
    out = tmp_path_factory.mktemp("rm") / "reward"
    cfg = RewardRunConfig(learning_rate=1e-3, num_train_epochs=2, per_device_train_batch_size=8)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_reward(tiny_policy_dir, rows[:80], rows[80:], out, cfg)
    finally:
        torch.set_num_threads(before)
    return out


@pytest.fixture
def ready_reward(tiny_reward_dir: Path, active_tiny_policy: int) -> int:
    """The trained tiny reward model registered as a ready reward version; returns its id."""
    with session_scope() as s:
        mv = registry.register_version(
            s, ModelKind.reward, tiny_reward_dir, parent_id=active_tiny_policy
        )
        return mv.id
