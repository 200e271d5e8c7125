"""`prefloop runs start ppo|rloo|grpo|dpo|policy`: the stored run and clear errors."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db import session_scope
from app.models import Run, RunKind
from tests.runs.test_queue import root, runner


def _last() -> Run:
    with session_scope() as s:
        return s.scalars(select(Run).order_by(Run.id.desc())).first()  # type: ignore[return-value]


def test_cli_starts_each_algorithm():
    for argv, algorithm in [
        (["rloo", "-p", "beta=0.1", "-p", "steps=4"], "rloo"),
        (["grpo", "-p", "loss_type=dr_grpo"], "grpo"),
        (["dpo", "-p", "beta=0.2"], "dpo"),
        (["ppo", "-p", "kl_coef=0.1"], "ppo"),
        (["policy", "-p", "algorithm=grpo"], "grpo"),
        (["policy"], "ppo"),
    ]:
        out = runner.invoke(root, ["runs", "start", *argv])
        assert out.exit_code == 0, (argv, out.output)
        run = _last()
        assert run.kind == RunKind.policy and run.params["algorithm"] == algorithm
        assert f"queued policy run {run.id} ({algorithm})" in out.output
    assert _last().params == {"algorithm": "ppo"}


def test_cli_refuses_bad_policy_params():
    with session_scope() as s:
        before = s.scalar(select(func.count()).select_from(Run))
    for argv, needle in [
        (["grpo", "-p", "beta=0"], "greater than 0"),
        (["rloo", "-p", "algorithm=dpo"], "runs algorithm rloo"),
        (["dpo", "-p", "num_generations=4"], "num_generations"),
        (["reinforce"], "unknown run kind"),
        (["ppo", "-p", "algorithm=grpo"], "kind policy"),
    ]:
        out = runner.invoke(root, ["runs", "start", *argv])
        assert out.exit_code != 0 and needle in out.output, (argv, out.output)
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == before
