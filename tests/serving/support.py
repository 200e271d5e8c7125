"""An in-process uvicorn server (real sockets, so real disconnects) whose app the test can
inspect, and a gate on the served model's forward passes (one per generated token)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from app.config import get_settings
from tests.conftest import free_port


@contextmanager
def settings_env(**values: str) -> Iterator[None]:
    """PREFLOOP_<NAME>=value for the duration (the settings cache is rebuilt both ways)."""
    keys = {f"PREFLOOP_{k.upper()}": v for k, v in values.items()}
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


class ThreadServer:
    """create_app() served by uvicorn in a thread of the test process."""

    def __init__(self) -> None:
        from app.main import create_app

        self.app = create_app()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("in-process server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    @property
    def limiter(self) -> Any:
        return self.app.state.generation_limiter

    @property
    def model(self) -> Any:
        return self.app.state.serving_engine.loaded.generator.model


class Gate:
    """Counts the served model's forward passes. From pass `at` on, each pass waits: with
    `until_stopped`, for the running request's stop event (its client went away); otherwise for
    `release()`. Waits give up after 60 s (recorded, so a test can tell)."""

    def __init__(self, server: ThreadServer, at: int, until_stopped: bool) -> None:
        self.server, self.at, self.until_stopped = server, at, until_stopped
        self.steps = 0
        self.reached = threading.Event()
        self.released = threading.Event()
        self.stopped_in_time: bool | None = None
        self.stop: threading.Event | None = None
        self.handle = server.model.register_forward_hook(self._hook)

    def _hook(self, module: Any, args: Any, output: Any) -> None:
        self.steps += 1
        if self.steps < self.at:
            return
        if self.steps == self.at:
            running = self.server.limiter.tickets()
            self.stop = running[0].stop if len(running) == 1 else None
            self.reached.set()
        if self.until_stopped:
            if self.stopped_in_time is None:
                self.stopped_in_time = self.stop is not None and self.stop.wait(60)
        else:
            self.released.wait(60)

    def release(self) -> None:
        self.released.set()

    def remove(self) -> None:
        self.released.set()
        self.handle.remove()


def raw_request(url: str, path: str, body: dict[str, Any], token: str) -> socket.socket:
    """Send a POST over a plain socket and return the socket (closing it is the disconnect)."""
    host, port = url.removeprefix("http://").split(":")
    data = json.dumps(body).encode()
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data)
    return sock


def wait_until(cond: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
