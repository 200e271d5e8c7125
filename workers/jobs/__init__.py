"""Run kind -> job function `run(ctx: JobContext) -> dict` (the dict is stored in runs.metrics).

A job reports with ctx.progress()/ctx.log(), polls ctx.should_stop() and raises
ml.callbacks.Cancelled to stop (the run becomes cancelled); any other exception fails the
run with its message. Returning normally marks the run succeeded.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from app.models import RunKind

JobFn = Callable[[Any], dict[str, Any]]

#: module holding `run(ctx)` for each kind; imported lazily so the worker starts fast
JOBS: dict[RunKind, str] = {
    RunKind.generate: "workers.jobs.generate",
    RunKind.reward: "workers.jobs.reward",
    RunKind.ppo: "workers.jobs.policy",  # rows queued before `policy` existed: algorithm ppo
    RunKind.battle: "workers.jobs.battle",
    RunKind.policy: "workers.jobs.policy",
}


def job_for(kind: RunKind | str) -> JobFn:
    """The job function for a run kind; ImportError/LookupError if it is not available."""
    module = JOBS.get(RunKind(kind))
    if module is None:
        raise LookupError(f"no job registered for run kind {kind!r}")
    job: JobFn = importlib.import_module(module).run
    return job
