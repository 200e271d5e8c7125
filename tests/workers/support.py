"""Helpers for worker, registry and serving tests: store tiny versions, run worker processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from app.db import session_scope
from app.models import ModelKind, Run
from app.models_registry import service as registry
from app.prompts import parsing, store

ROOT = Path(__file__).resolve().parents[2]


def store_tiny(tiny: Path, activate: bool = True) -> tuple[int, str]:
    """Copy the tiny policy into the store as a new version; returns (id, version)."""
    name, dest = registry.new_version_path(ModelKind.policy)
    shutil.copytree(tiny, dest)
    with session_scope() as s:
        mv = registry.register_version(s, ModelKind.policy, dest, base_model="tiny")
        if activate:
            registry.activate(s, mv.id)
        return mv.id, mv.version


def add_prompts(n: int, prefix: str = "q") -> list[int]:
    """Import n prompts needing candidates; returns their ids."""
    lines = "\n".join(f'{{"prompt": "{prefix} {i}: Hello, how are you?"}}' for i in range(n))
    records = parsing.parse((lines + "\n").encode(), "prompts", "jsonl")
    with session_scope() as s:
        ids = store.upsert_prompts(s, records, needs_candidates=True)
    return sorted(ids.values())


def get_run(run_id: int) -> Run:
    with session_scope() as s:
        run = s.get(Run, run_id)
        assert run is not None
        return run


def runs_by_id() -> dict[int, Run]:
    with session_scope() as s:
        return {r.id: r for r in s.scalars(select(Run))}


def wait_for(cond: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def start_worker(
    tmp: Path, name: str, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    """`prefloop worker --id NAME ARGS` in its own process group; returns (process, log path)."""
    log = tmp / f"worker-{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", "worker", "--id", name, *args],
        cwd=ROOT,
        env={**os.environ, "PREFLOOP_QUEUE_TARGET": "0", **(env or {})},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, log


def stop(proc: subprocess.Popen[bytes], sig: int = 15, timeout: float = 30) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    return proc.wait(timeout)
