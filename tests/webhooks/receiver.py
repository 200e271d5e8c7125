"""A local webhook receiver that verifies every request with the standardwebhooks library; it
can be taken down and brought back on the same port."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import free_port


class Receiver:
    def __init__(self, secret: str = "", status: int = 204) -> None:
        self.secret = secret
        self.status = status
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.received: list[dict[str, Any]] = []  # verified: {"headers", "body"}
        self.rejected: list[str] = []  # failed verification: the reason
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.got = threading.Event()

    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k: v for k, v in self.headers.items()}
                try:
                    body = Webhook(receiver.secret).verify(raw, headers)
                except WebhookVerificationError as e:
                    receiver.rejected.append(str(e))
                    self.send_response(400)
                else:
                    receiver.received.append({"headers": headers, "body": body})
                    self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()
                receiver.got.set()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def types(self) -> list[str]:
        return [m["body"]["type"] for m in self.received]

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m["body"]["type"] == event_type]


def dumps(x: Any) -> str:
    return json.dumps(x, sort_keys=True)
