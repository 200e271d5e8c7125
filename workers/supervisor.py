"""`prefloop up`: `prefloop serve` and `prefloop worker` as child processes, stopped together."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

CLI = [sys.executable, "-c", "from app.cli import main; main()"]
STOP_TIMEOUT_S = 30.0


def _die_with_parent() -> None:
    """In the child before exec (Linux): get SIGTERM when `prefloop up` dies, even by SIGKILL,
    so no orphaned worker goes on claiming runs. Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop(procs: dict[str, subprocess.Popen[bytes]], force: dict[str, int]) -> None:
    """SIGTERM every child (the worker re-queues its current run), then SIGKILL stragglers
    after STOP_TIMEOUT_S, or at once on a second Ctrl-C."""
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while any(p.poll() is None for p in procs.values()):
        if time.monotonic() > deadline or force["signals"] > 1:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
        time.sleep(0.1)


def supervise(host: str | None = None, port: int | None = None) -> int:
    """Start both children, wait until Ctrl-C/SIGTERM or one exits, stop the other; exit code."""
    serve = CLI + ["serve"]
    if host:
        serve += ["--host", host]
    if port:
        serve += ["--port", str(port)]
    stop = {"signal": 0, "signals": 0}

    def handler(signum: int, _frame: Any) -> None:
        stop["signal"] = signum
        stop["signals"] += 1

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    # own sessions: a terminal Ctrl-C reaches only us, and we stop the children in order
    # and a parent-death signal: killed by SIGKILL, we cannot stop them ourselves
    procs = {
        "web": subprocess.Popen(serve, start_new_session=True, preexec_fn=_die_with_parent),
        "worker": subprocess.Popen(
            CLI + ["worker"], start_new_session=True, preexec_fn=_die_with_parent
        ),
    }
    from app.config import get_settings

    settings = get_settings()
    url = f"http://{host or settings.host}:{port or settings.port}"
    print(f"prefloop up: web on {url}, worker running; Ctrl-C stops both", file=sys.stderr)
    code = 0
    try:
        while not stop["signal"]:
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead:
                code = procs[dead[0]].returncode or 1
                print(f"prefloop up: {dead[0]} exited ({code}); stopping", file=sys.stderr)
                break
            time.sleep(0.3)
    finally:
        _stop(procs, stop)
        for s, h in old.items():
            signal.signal(s, h)
    return code
