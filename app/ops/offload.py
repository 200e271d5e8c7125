"""CPU-heavy request work (parsing and writing an import of up to 200 MB) in a helper process.

A worker thread would keep the event loop free but still share the GIL with it: every request
served meanwhile waits for the thread's switch interval, several times over (bench/README.md,
"Import stalls"). A separate process shares nothing with the loop.

One helper per web process, started on first use and reused; jobs run one at a time. Helpers
are forked from a forkserver that has the import code preloaded (no fork of the threaded web
process itself, and a helper starts in milliseconds, not the seconds an import of the app takes).
The helper is shut down with the app, and exits by itself if the web process dies.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait
from typing import Any, TypeVar

from starlette.applications import Starlette

log = logging.getLogger("prefloop")

T = TypeVar("T")

PRELOAD = ["app.prompts.service", "app.labeled_import.service"]

_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


class HelperDied(RuntimeError):
    """The helper process died during the job (e.g. killed for memory); HTTP 503."""


def _exit_with_parent() -> None:
    """In the helper: leave as soon as the web process is gone (even after a SIGKILL)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="prefloop-parent-watch").start()


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=_exit_with_parent)
        return _pool


def shutdown() -> None:
    """Stop the helper (the app's shutdown hook); the next job starts a new one."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


async def run(app: Starlette, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in the helper process (fn and args must pickle); its exceptions re-raise.
    `app` gets a shutdown hook that stops the helper with it."""
    global _pool
    state = app.state
    if shutdown not in state.shutdown_hooks:
        state.shutdown_hooks.append(shutdown)
    pool = _executor()
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
    except BrokenProcessPool:
        with _lock:
            if _pool is pool:
                _pool = None  # the next job starts a fresh helper
        log.error("the import helper process died while running %s", fn.__qualname__)
        raise HelperDied("the helper process died (out of memory?); nothing was imported") from None
