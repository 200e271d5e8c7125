"""ASGI middleware capping request bodies (413 with a JSON message)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.ops.errors import error_body


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, default: int, large: int, large_prefixes: tuple[str, ...]):
        self.app, self.default, self.large, self.large_prefixes = (
            app,
            default,
            large,
            large_prefixes,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.large if scope["path"].startswith(self.large_prefixes) else self.default
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = True
            if too_big:
                await _reject(send, limit, scope["path"])
                return
        seen = 0
        rejected = False

        async def limited() -> Message:
            # Answer 413 as soon as the stream passes the limit, then tell the app the client
            # left: raising here instead would be turned into a 400 by the body parser.
            nonlocal seen, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    rejected = True
                    await _reject(send, limit, scope["path"])
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not rejected:  # the 413 is already out; drop whatever the app answers
                await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if not rejected:
                raise


async def _reject(send: Send, limit: int, path: str) -> None:
    body = json.dumps(error_body(f"request body larger than {limit} bytes", 413, path)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
