"""`prefloop generate` queues a run and follows it to the end (a worker runs beside it)."""

from __future__ import annotations

import threading
import time

from typer.testing import CliRunner

from app.cli import GROUPS, _discover, root
from tests.workers.support import add_prompts, store_tiny
from workers.runner import Worker

if "runs" not in GROUPS:
    _discover()


def test_generate_command_follows_the_run(tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    store_tiny(tiny_policy_dir)
    add_prompts(2)
    worker = Worker(worker_id="beside", fill_queue=False)

    def work() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not worker.tick():
            time.sleep(0.2)

    thread = threading.Thread(target=work)
    thread.start()
    out = CliRunner().invoke(
        root, ["generate", "--prompts", "2", "-p", "max_new_tokens=8", "-p", "seed=1"]
    )
    thread.join(150)
    assert out.exit_code == 0, out.output
    assert "queued generate run" in out.output and "succeeded" in out.output
    assert "tasks_created" in out.output and "claimed by beside" in out.output
