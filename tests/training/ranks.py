"""Helpers for the multi-process (torchrun) training tests: find this test process's ranks and
start a 2-rank run on a worker thread."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from app.config import get_settings
from app.db import session_scope
from app.models import Run, RunKind
from app.runs import service as runs

# ranks inherit the environment: this marks the ones this test process started (other sessions
# on the machine may be running ranks of their own)
os.environ["PREFLOOP_RANKS_TEST"] = str(os.getpid())
MARK = f"PREFLOOP_RANKS_TEST={os.getpid()}".encode()


def rank_pids() -> list[int]:
    """Processes running a rank of this test process's runs."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            if b"workers.launch_rank" not in cmd or b"torch.distributed.run" in cmd:
                continue
            if MARK in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def start_ranked_run(kind: RunKind, params: dict) -> tuple[int, threading.Thread]:
    """Queue a 2-rank run and start a worker on it in a thread; return once both ranks train
    (a condition wait under a generous bound, for loaded CI machines)."""
    from workers.runner import Worker

    with session_scope() as s:
        rid = runs.create_run(s, kind, params, None).id
    worker = Worker(worker_id="test-worker", settings=get_settings(), fill_queue=False)
    thread = threading.Thread(target=worker.tick, daemon=True)
    thread.start()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # until the ranks are training
        with session_scope() as s:
            if s.get(Run, rid).progress_step >= 1 and len(rank_pids()) == 2:
                return rid, thread
        time.sleep(0.2)
    raise AssertionError("the 2-rank run did not start training")
