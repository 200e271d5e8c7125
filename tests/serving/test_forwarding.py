"""The web process forwards /v1 to an external OpenAI-compatible server (generation_backend=
openai): here a small one the test starts on a real socket, standing in for vLLM/TGI."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import free_port
from tests.factories import auth, make_user
from tests.serving.support import settings_env

HELLO = [{"role": "user", "content": "ping pong"}]


class Upstream(BaseHTTPRequestHandler):
    """Answers chat completions with the last user message reversed, plain or as SSE."""

    seen: list[dict] = []

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Upstream.seen.append({"auth": self.headers.get("Authorization"), **body})
        if body.get("max_tokens", 0) > 50:
            return self._send(400, {"error": {"message": "max_tokens too large upstream"}})
        reply = body["messages"][-1]["content"][::-1]
        usage = {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}
        if not body.get("stream"):
            msg = {"role": "assistant", "content": reply}
            choice = {"index": 0, "message": msg, "finish_reason": "stop"}
            return self._send(200, {"id": "x", "object": "chat.completion", "model": body["model"],
                                    "choices": [choice], "usage": usage})  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for part in (reply[:4], reply[4:]):
            chunk = {"choices": [{"index": 0, "delta": {"content": part}}], "model": body["model"]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        if (body.get("stream_options") or {}).get("include_usage"):
            self.wfile.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Upstream.seen.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_web_process_forwards_v1_to_an_external_server(upstream: str) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    token = make_user("lab")
    env = {
        "generation_backend": "openai",
        "generation_base_url": upstream,
        "generation_api_key": "upstream-secret",
        "generation_model": "big-model",
    }
    with settings_env(**env), TestClient(create_app()) as client:
        models = client.get("/v1/models", headers=auth(token)).json()["data"]
        assert "big-model" in {m["id"] for m in models}
        body = {"messages": HELLO, "max_tokens": 8, "temperature": 0.5}
        r = client.post("/v1/chat/completions", json=body, headers=auth(token))
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "gnop gnip"
        sent = Upstream.seen[-1]
        assert sent["model"] == "big-model" and sent["max_tokens"] == 8
        assert sent["temperature"] == 0.5 and sent["auth"] == "Bearer upstream-secret"
        assert sent["messages"] == HELLO
        with client.stream(
            "POST", "/v1/chat/completions", json={**body, "stream": True}, headers=auth(token)
        ) as resp:
            assert resp.status_code == 200
            text = "".join(
                (json.loads(line[5:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
                for line in resp.iter_lines()
                if line.startswith("data:") and line[5:].strip() != "[DONE]"
            )
        assert text == "gnop gnip"
        # the upstream's refusal reaches the client as a 4xx/5xx error object, never a 500 crash
        r = client.post(
            "/v1/chat/completions", json={"messages": HELLO, "max_tokens": 60}, headers=auth(token)
        )
        assert r.status_code in (400, 502) and "error" in r.json(), r.text
