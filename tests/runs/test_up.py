"""`prefloop up`: web server + worker; candidates appear on their own; Ctrl-C stops both."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

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


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may linger where PID 1 does not reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _kill_all(proc: subprocess.Popen[bytes], children: list[int]) -> None:
    """Test cleanup: the supervisor's group and its children (in their own sessions)."""
    for pid in [*children, *(_children(proc.pid) if proc.poll() is None else [])]:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


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
    children: list[int] = []
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        # generous bound: a cold start under a loaded CI machine (ends as soon as it is up)
        wait_for(healthy, 300, "the web server")
        wait_for(lambda: _generated() >= 1, 240, "generated tasks")
        with session_scope() as s:
            active = registry.active_version(s, ModelKind.policy)
            assert active is not None and active.base_model == str(tiny_policy_dir.resolve())
        children = _children(proc.pid)
        assert len(children) == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
        assert not [c for c in children if _alive(c)]
        assert not healthy()
    finally:
        _kill_all(proc, children)


def test_children_stop_when_up_is_killed(tiny_policy_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL of `prefloop up` (OOM killer, kill -9) leaves no orphaned web server or worker
    claiming runs: the children get a parent-death signal."""
    env = {
        **os.environ,
        "PREFLOOP_POLICY_MODEL": str(tiny_policy_dir),
        "PREFLOOP_QUEUE_TARGET": "0",
    }
    log = tmp_path / "up.log"
    cmd = [sys.executable, "-c", "from app.cli import main; main()", "up"]
    cmd += ["--port", str(free_port())]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    children: list[int] = []
    try:
        wait_for(lambda: len(_children(proc.pid)) == 2, 300, "both children")
        children = _children(proc.pid)
        proc.kill()  # only the supervisor: its children live in their own sessions
        proc.wait()
        wait_for(lambda: not any(_running(c) for c in children), 300, "the children to exit")
    finally:
        _kill_all(proc, children)
