"""`prefloop up`: web server + worker; candidates appear on their own; Ctrl-C stops both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
from sqlalchemy import func, select

from app.db import session_scope
from app.models import ComparisonTask, ModelKind
from app.models_registry import service as registry
from tests.conftest import ROOT, free_port
from tests.factories import make_tasks
from tests.workers.support import wait_for


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _generated() -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).where(ComparisonTask.run_id.is_not(None))) or 0


def test_up_serves_generates_and_stops_cleanly(tiny_policy_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    make_tasks(2)  # prompts exist, all with tasks: the queue-target rule tops the queue up
    port = free_port()
    env = {
        **os.environ,
        "PREFLOOP_POLICY_MODEL": str(tiny_policy_dir),
        "PREFLOOP_QUEUE_TARGET": "4",
        "PREFLOOP_MAX_NEW_TOKENS": "16",
    }
    log = tmp_path / "up.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 120, "the web server")
        wait_for(lambda: _generated() >= 1, 240, "generated tasks")
        with session_scope() as s:
            active = registry.active_version(s, ModelKind.policy)
            assert active is not None and active.base_model == str(tiny_policy_dir.resolve())
        children = [
            int(p)
            for p in subprocess.run(
                ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
            ).stdout.split()
        ]
        assert len(children) == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
        assert not [c for c in children if _alive(c)]
        assert not healthy()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
