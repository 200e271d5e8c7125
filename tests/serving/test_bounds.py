"""/v1 bounds, tried as a hostile labeler would: caps, context length, per-user and queue limits
(429/503 with Retry-After), and a client that disconnects stops its generation.

A real uvicorn serves the tiny policy in this process; a forward hook on the model counts
generation steps and holds generation at a chosen step, so every ordering is decided by the
test, never by timing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.factories import auth, make_user
from tests.serving.support import Gate, ThreadServer, raw_request, settings_env, wait_until
from tests.workers.support import store_tiny

HELLO = [{"role": "user", "content": "Hello, how are you?"}]
URL = "/v1/chat/completions"


@pytest.fixture
def served(tiny_policy_dir) -> Iterator[ThreadServer]:  # type: ignore[no-untyped-def]
    """The tiny policy, active and loaded, behind small limits: max_tokens <= 64, n <= 2, one
    generation at a time, 2 requests in flight per user, 1 waiting."""
    store_tiny(tiny_policy_dir)
    env = {
        "serving_max_tokens": "64",
        "serving_max_n": "2",
        "serving_concurrency": "1",
        "serving_per_user": "2",
        "serving_queue": "1",
    }
    with settings_env(**env), ThreadServer() as server:
        yield server


def _post(server: ThreadServer, token: str, **body: object) -> httpx.Response:
    payload = {"messages": HELLO, "temperature": 0, **body}
    return httpx.post(server.url + URL, json=payload, headers=auth(token), timeout=120)


def _assert_error(r: httpx.Response, status: int, param: str | None = None) -> dict:
    """ErrorOut with the OpenAI error object; no exception text."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["message"] and body["detail"]
    if param is not None:
        assert body["error"]["param"] == param, body
    assert "Traceback" not in r.text and "Error(" not in r.text
    return body


def test_caps_context_and_seed_are_4xx_naming_the_field(served) -> None:  # type: ignore[no-untyped-def]
    token = make_user("lab")
    assert _post(served, token, max_tokens=4).status_code == 200  # loads the model
    body = _assert_error(_post(served, token, max_tokens=65), 400, "max_tokens")
    assert "at most 64" in body["detail"]
    _assert_error(_post(served, token, max_completion_tokens=1000), 400, "max_tokens")
    body = _assert_error(_post(served, token, n=3, max_tokens=4), 400, "n")
    assert "at most 2" in body["detail"]
    # the tiny model holds 512 tokens: ~900 KB of prompt gave a 500 from the model before
    huge = [{"role": "user", "content": "Hello there, " * 70_000}]
    body = _assert_error(_post(served, token, messages=huge, max_tokens=4), 400, "messages")
    assert body["error"]["code"] == "context_length_exceeded" and "512" in body["detail"]
    near = [{"role": "user", "content": "Hello " * 150}]  # 463 tokens: fits, but not with 64 more
    body = _assert_error(_post(served, token, messages=near, max_tokens=64), 400, "max_tokens")
    assert "context is 512 tokens" in body["detail"]
    ok = _post(served, token, messages=near, max_tokens=4)  # the same prompt, fewer tokens: fine
    assert ok.status_code == 200, ok.text
    # seeds are 64-bit: beyond is a validation error, the largest one works for every choice
    body = _assert_error(_post(served, token, seed=2**70), 422)
    assert body["detail"][0]["loc"][-1] == "seed"
    r = _post(served, token, seed=2**63 - 1, n=2, max_tokens=4, temperature=1.0)
    assert r.status_code == 200 and len(r.json()["choices"]) == 2, r.text


def test_busy_user_gets_429_and_a_full_queue_503_with_retry_after(served) -> None:  # type: ignore[no-untyped-def]
    alice, bob = make_user("alice"), make_user("bob")
    assert _post(served, alice, max_tokens=2).status_code == 200  # loads the model
    gate = Gate(served, at=2, until_stopped=False)
    lim = served.limiter
    with ThreadPoolExecutor(2) as pool:
        try:
            first = pool.submit(_post, served, alice, max_tokens=8)
            assert gate.reached.wait(60)  # alice's first request is generating (held)
            second = pool.submit(_post, served, alice, max_tokens=8)
            wait_until(lambda: lim.queued() == 1, "alice's second request to queue")
            r = _post(served, alice, max_tokens=8)  # a third one of hers: over her limit
            body = _assert_error(r, 429)
            assert body["error"]["type"] == "rate_limit_exceeded"
            assert int(r.headers["retry-after"]) >= 1
            r = _post(served, bob, max_tokens=8)  # 1 running + 1 waiting: the queue is full
            body = _assert_error(r, 503)
            assert body["error"]["code"] == "server_overloaded"
            assert int(r.headers["retry-after"]) >= 1
        finally:
            gate.remove()
        assert first.result().status_code == 200 and second.result().status_code == 200
    wait_until(lambda: lim.in_flight() == 0 and lim.running() == 0, "all requests to end")
    assert _post(served, bob, max_tokens=2).status_code == 200  # room again


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "sse"])
def test_client_disconnect_stops_generation(served, stream: bool) -> None:  # type: ignore[no-untyped-def]
    token = make_user("lab")
    body = {"messages": HELLO, "temperature": 0, "max_tokens": 64, "stream": stream}
    assert _post(served, token, max_tokens=2).status_code == 200  # loads the model
    counter = Gate(served, at=10**9, until_stopped=False)
    try:
        assert _post(served, token, **body).status_code == 200
        uninterrupted = counter.steps
    finally:
        counter.remove()
    gate = Gate(served, at=3, until_stopped=True)
    try:
        sock = raw_request(served.url, URL, body, token)
        assert gate.reached.wait(60), "generation did not start"
        sock.close()  # the client goes away while step 3 is being generated
        lim = served.limiter
        wait_until(lambda: lim.running() == 0 and lim.in_flight() == 0, "the request to end")
    finally:
        gate.remove()
    assert gate.stopped_in_time is True, "the disconnect never reached the generation"
    assert uninterrupted > 3 * 2  # the same request, not interrupted, goes on well past step 3
    assert gate.steps == 3  # stopped right after the step during which the client left


class StandIn(BaseHTTPRequestHandler):
    """An OpenAI-compatible server standing in for vLLM: streams one token every 20 ms until
    its client closes the connection, or for at most 60 s."""

    protocol_version = "HTTP/1.0"
    CAP = 3000

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        state = self.server.state  # type: ignore[attr-defined]
        state["request"] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        sent = 0
        try:
            while sent < self.CAP:
                chunk = {"choices": [{"index": 0, "delta": {"content": "tok "}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                sent += 1
                if sent == 2:
                    state["reached"].set()
                time.sleep(0.02)
            state["ended"] = "cap"
        except OSError:  # BrokenPipe / ConnectionReset: the client closed the stream
            state["ended"] = "disconnect"
        state["sent"] = sent
        state["done"].set()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "sse"])
def test_disconnect_closes_the_external_servers_stream(stream: bool) -> None:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    upstream.state = {"reached": threading.Event(), "done": threading.Event()}  # type: ignore[attr-defined]
    state = upstream.state  # type: ignore[attr-defined]
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    env = {
        "generation_backend": "openai",
        "generation_base_url": f"http://127.0.0.1:{upstream.server_address[1]}/v1",
        "generation_model": "stand-in",
    }
    try:
        with settings_env(**env), ThreadServer() as served:
            token = make_user("lab")
            body = {"messages": HELLO, "max_tokens": 64, "stream": stream}
            sock = raw_request(served.url, URL, body, token)
            assert state["reached"].wait(60), "the external server was never called"
            sock.close()
            assert state["done"].wait(90), "the external server's stream was never closed"
            lim = served.limiter
            wait_until(lambda: lim.running() == 0 and lim.in_flight() == 0, "the request to end")
    finally:
        upstream.shutdown()
    assert state["request"]["stream"] is True  # streamed upstream even for a plain request
    assert state["ended"] == "disconnect" and state["sent"] < StandIn.CAP
