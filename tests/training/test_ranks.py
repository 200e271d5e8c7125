"""Training runs as a 2-process group over gloo on CPU (torchrun): reward and PPO finish and
register a version; cancel stops every rank within seconds; a dying rank fails the run and the
active model stays."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from app.db import session_scope
from app.models import ModelKind, ModelStatus, ModelVersion, Run, RunKind, RunStatus
from app.models_registry import service as registry
from app.runs import service as runs
from tests.training.conftest import run_job
from tests.training.ranks import rank_pids, start_ranked_run
from tests.training.synth import seed_polite_preferences

RM = {"learning_rate": 2e-3, "num_train_epochs": 2, "max_length": 256, "eval_fraction": 0.25}


@pytest.mark.slow
def test_two_rank_reward_run_matches_one_process(active_tiny_policy):
    seed_polite_preferences(n_prompts=16, tasks_per_prompt=3, k=3)
    one = run_job(RunKind.reward, {**RM, "batch_size": 8})
    two = run_job(RunKind.reward, {**RM, "batch_size": 4, "num_processes": 2})  # same global batch
    for run in (one, two):
        assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    a, b = one.metrics, two.metrics
    assert (a["processes"], b["processes"]) == (1, 2)
    assert a["n_eval"] == b["n_eval"] >= 10
    assert abs(a["eval_accuracy"] - b["eval_accuracy"]) <= 0.03, (a, b)
    assert b["curves"]["loss"] and "2 process(es) started" in two.log_tail
    with session_scope() as s:
        mv = s.get(ModelVersion, b["reward_version_id"])
        assert mv.status == ModelStatus.ready and (Path(mv.path) / "config.json").exists()
    assert not rank_pids()


@pytest.mark.slow
def test_two_rank_ppo_run(ready_reward, active_tiny_policy):
    seed_polite_preferences(n_prompts=24, tasks_per_prompt=1)
    run = run_job(
        RunKind.ppo,
        {
            "num_processes": 2, "learning_rate": 1e-3, "num_ppo_steps": 2, "batch_size": 4,
            "num_ppo_epochs": 1, "response_length": 8, "max_heldout": 4,
            "eval_samples_per_prompt": 1, "auto_promote": False,
        },
    )  # fmt: skip
    assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    m = run.metrics
    assert m["processes"] == 2 and len(m["curves"]["reward"]) == 2
    with session_scope() as s:
        assert s.get(ModelVersion, m["policy_version_new_id"]).status == ModelStatus.ready
    assert not rank_pids()


LONG = {**RM, "batch_size": 2, "num_train_epochs": 100, "num_processes": 2}


@pytest.mark.slow
def test_cancel_stops_every_rank_within_seconds(active_tiny_policy):
    seed_polite_preferences(n_prompts=8, tasks_per_prompt=2, k=3)
    rid, thread = start_ranked_run(RunKind.reward, LONG)
    t0 = time.monotonic()
    with session_scope() as s:
        runs.request_cancel(s, rid)
    thread.join(60)
    assert not thread.is_alive()
    assert time.monotonic() - t0 < 15
    assert not rank_pids()
    with session_scope() as s:
        run = s.get(Run, rid)
        assert run.status == RunStatus.cancelled
        versions = s.query(ModelVersion).filter(ModelVersion.run_id == rid).all()
        assert [v.status for v in versions] == [ModelStatus.failed]


@pytest.mark.slow
def test_a_dying_rank_fails_the_run_and_the_active_model_stays(active_tiny_policy):
    seed_polite_preferences(n_prompts=8, tasks_per_prompt=2, k=3)
    rid, thread = start_ranked_run(RunKind.reward, LONG)
    victim = max(rank_pids())
    os.kill(victim, signal.SIGKILL)
    thread.join(60)
    assert not thread.is_alive() and not rank_pids()
    with session_scope() as s:
        run = s.get(Run, rid)
        assert run.status == RunStatus.failed and "process group failed" in run.error
        versions = s.query(ModelVersion).filter(ModelVersion.run_id == rid).all()
        assert [v.status for v in versions] == [ModelStatus.failed]
        assert registry.active_version(s, ModelKind.policy).id == active_tiny_policy


def test_launch_settings_and_limits(tmp_path, monkeypatch):
    from app.config import Settings
    from ml.device import Placement
    from ml.params import RewardParams
    from workers.jobs.training import JobParamError
    from workers.launch import Launch, command, launch_for

    cpu = Placement("cpu", "float32")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert launch_for(RewardParams(), Settings(), cpu) == Launch(1, None)
    assert launch_for(RewardParams(), Settings(train_processes=2), cpu).processes == 2
    assert launch_for(RewardParams(num_processes=2), Settings(), cpu).processes == 2
    with pytest.raises(JobParamError, match="2 CPU cores"):
        launch_for(RewardParams(num_processes=3), Settings(), cpu)
    cmd = command(Launch(2, None), tmp_path / "spec.json")
    assert "torch.distributed.run" in cmd and cmd[cmd.index("--nproc_per_node") + 1] == "2"
    # accelerate configs: a bare name inside ACCELERATE_DIR, passed through to accelerate launch
    with pytest.raises(JobParamError, match="ACCELERATE_DIR"):
        launch_for(RewardParams(accelerate_config="ddp.yaml"), Settings(), cpu)
    (tmp_path / "ddp.yaml").write_text("distributed_type: MULTI_GPU\nnum_processes: 8\n")
    s = Settings(accelerate_dir=tmp_path)
    launch = launch_for(RewardParams(accelerate_config="ddp.yaml", num_processes=8), s, cpu)
    assert launch == Launch(8, tmp_path / "ddp.yaml") and not launch.in_process
    cmd = command(launch, tmp_path / "spec.json")
    assert cmd[1:4] == ["launch", "--config_file", str(tmp_path / "ddp.yaml")]
    assert cmd[-2:] == ["workers.launch_rank", str(tmp_path / "spec.json")]
    with pytest.raises(JobParamError, match="does not exist"):
        launch_for(RewardParams(accelerate_config="fsdp.yaml"), s, cpu)
    with pytest.raises(ValueError):  # no paths in run params
        RewardParams(accelerate_config="../etc/passwd")
