"""OpenAI-compatible endpoints for the active policy: /v1/chat/completions (plain and SSE
streaming) and /v1/models. Any signed-in account may call them with its API token (Bearer).

Bounded per web process (docs/serving.md, "Limits"): caps on max_tokens and n, the model's
context window, a per-user limit on requests in flight and a bounded, fair queue for the
generation slots (`app.serving.limits`). A client that disconnects stops its generation."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from app.auth.deps import AnyUser, SessionDep
from app.config import get_settings
from app.metrics.process import GEN_TOKENS
from app.ops.errors import V1_ERRORS, openai_error
from app.serving import context
from app.serving.engine import ALIAS, Loaded, NoModel, ServingEngine
from app.serving.limits import (
    ClientGone,
    GenerationLimiter,
    Refused,
    Ticket,
    watch_disconnect,
)
from app.serving.schemas import ChatRequest

log = logging.getLogger("prefloop.serving")

router = APIRouter(prefix="/v1", tags=["serving"], responses=V1_ERRORS)

INT64 = 2**64


def engine_for(request: Request) -> ServingEngine:
    """The app's serving engine, created on first use (the model itself loads lazily too)."""
    state = request.app.state
    if getattr(state, "serving_engine", None) is None:
        state.serving_engine = ServingEngine(get_settings())
    return state.serving_engine


def limiter_for(app: FastAPI) -> GenerationLimiter:
    """The web process's generation limiter (`limiter_for(app).queued()`: requests waiting)."""
    state = app.state
    if getattr(state, "generation_limiter", None) is None:
        s = get_settings()
        slots = s.serving_concurrency or (8 if s.generation_backend == "openai" else 1)
        state.generation_limiter = GenerationLimiter(
            slots, s.serving_per_user, s.serving_queue, s.serving_queue_timeout_s
        )
        getattr(state, "shutdown_hooks", []).append(state.generation_limiter.shutdown)
    return state.generation_limiter


def error(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """ErrorOut with the OpenAI error object (what OpenAI clients read)."""
    body = {"detail": message, "error": openai_error(message, status, param, code)}
    return JSONResponse(body, status_code=status, headers=headers)


def _refused(e: Refused) -> JSONResponse:
    code = "too_many_requests" if e.status == 429 else "server_overloaded"
    return error(e.status, str(e), code=code, headers={"Retry-After": str(e.retry_after)})


def _failed(e: BaseException, request_id: str) -> JSONResponse:
    """A generation fault: the reason goes to the log, the client gets a reference to it."""
    if isinstance(e, httpx.HTTPStatusError) and e.response.status_code < 500:
        log.warning("%s: the generation server refused: %s", request_id, e.response.text[:500])
        return error(400, f"the generation server refused the request ({request_id})")
    if isinstance(e, httpx.HTTPError):
        log.error("%s: generation server error: %r", request_id, e)
        return error(502, f"the generation server failed ({request_id}); see the server log")
    log.error("%s: generation failed", request_id, exc_info=e)
    return error(500, f"generation failed ({request_id}); see the server log")


def _params(body: ChatRequest, max_new_tokens: int, i: int) -> Any:
    from ml.generate import GenerationParams

    s = get_settings()
    seed = None
    if body.seed is not None:  # choice i samples with seed + i, kept a signed 64-bit integer
        seed = (body.seed + i + INT64 // 2) % INT64 - INT64 // 2
    return GenerationParams(
        max_new_tokens=max_new_tokens,
        temperature=s.temperature if body.temperature is None else body.temperature,
        top_p=s.top_p if body.top_p is None else body.top_p,
        seed=seed,
    )


@router.get("/models")
async def list_models(request: Request, session: SessionDep, _: AnyUser) -> JSONResponse:
    """The served policy under its version name and the alias `prefloop-policy` (empty: none)."""
    try:
        loaded = await engine_for(request).current(session)
    except NoModel:
        return JSONResponse({"object": "list", "data": []})  # nothing served yet
    created = int(time.time())
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "prefloop"}
        for name in (loaded.target.name, ALIAS)
    ]
    return JSONResponse({"object": "list", "data": data})


def _sse(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


_END = object()


async def _deltas(
    loaded: Loaded, messages: list[dict], params: Any, ticket: Ticket
) -> AsyncIterator[str]:
    """Text deltas of one choice as the generation thread produces them."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def produce() -> None:
        for delta in loaded.generator.stream(messages, params, ticket.stop):
            loop.call_soon_threadsafe(queue.put_nowait, delta)

    runner = asyncio.ensure_future(ticket.run(produce))
    # every delta is queued before the thread ends, so _END always comes last
    runner.add_done_callback(lambda _: queue.put_nowait(_END))
    runner.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved, not lost
    while (item := await queue.get()) is not _END:
        yield item
    await runner  # raises what the generation (or the wait for a slot) raised


async def _stream(
    loaded: Loaded, body: ChatRequest, messages: list[dict], max_new: int, ticket: Ticket
) -> AsyncIterator[bytes]:
    """SSE chunks in the OpenAI format."""
    cid = f"chatcmpl-{uuid.uuid4().hex}"
    base = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time())}
    base["model"] = loaded.target.name
    for i in range(body.n):
        first = {"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        yield _sse({**base, "choices": [first]})
        try:
            async for delta in _deltas(loaded, messages, _params(body, max_new, i), ticket):
                GEN_TOKENS.inc()
                choice = {"index": i, "delta": {"content": delta}, "finish_reason": None}
                yield _sse({**base, "choices": [choice]})
        except ClientGone:
            return
        except Refused as e:  # headers are sent: report in-band, as OpenAI servers do
            yield _sse({"error": openai_error(str(e), e.status, code="server_overloaded")})
            yield b"data: [DONE]\n\n"
            return
        except Exception as e:
            message = json.loads(bytes(_failed(e, cid).body))["error"]
            yield _sse({"error": message})
            yield b"data: [DONE]\n\n"
            return
        if ticket.gone:
            return
        yield _sse({**base, "choices": [{"index": i, "delta": {}, "finish_reason": "stop"}]})
    if body.stream_options and body.stream_options.include_usage:
        yield _sse({**base, "choices": [], "usage": None})
    yield b"data: [DONE]\n\n"


class _TicketStream(StreamingResponse):
    """A streamed answer that gives its ticket back however it ends (done, failed, or the
    client gone before the first byte)."""

    def __init__(self, ticket: Ticket, watcher: asyncio.Task[None], **kw: Any) -> None:
        super().__init__(**kw)
        self.ticket, self.watcher = ticket, watcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.watcher.cancel()
            self.ticket.close()


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatRequest, request: Request, session: SessionDep, principal: AnyUser
) -> Response:
    """Generate with the active policy (in a generation thread, never on the event loop)."""
    engine, settings = engine_for(request), get_settings()
    try:
        loaded = await engine.current(session)
    except NoModel as e:  # like vLLM for an unknown model (5xx is kept for real faults)
        return error(404, str(e), "model", "model_not_found")
    if body.model and body.model not in engine.names():
        return error(
            404,
            f"model {body.model!r} is not served here; use {loaded.target.name!r} or {ALIAS!r}",
            "model",
            "model_not_found",
        )
    if body.n > settings.serving_max_n:
        return error(400, f"n is {body.n}, but this server allows at most "
                          f"{settings.serving_max_n} choices per request", "n")  # fmt: skip
    messages = [m.plain() for m in body.messages]
    await session.commit()  # release the connection before a long generation
    try:
        ticket = limiter_for(request.app).admit(principal.user_id)
    except Refused as e:
        return _refused(e)
    watcher = asyncio.create_task(watch_disconnect(request.receive, ticket))
    streaming = False
    try:
        asked = body.max_completion_tokens or body.max_tokens
        max_new, _ = await asyncio.to_thread(context.plan, loaded, messages, asked, settings)
        if body.stream:
            streaming = True
            return _TicketStream(
                ticket,
                watcher,
                content=_stream(loaded, body, messages, max_new, ticket),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return await _complete(loaded, body, messages, max_new, ticket)
    except context.RequestTooLarge as e:
        return error(400, str(e), e.param, "context_length_exceeded")
    finally:
        if not streaming:  # a stream gives its ticket back when it ends
            watcher.cancel()
            ticket.close()


async def _complete(
    loaded: Loaded, body: ChatRequest, messages: list[dict], max_new: int, ticket: Ticket
) -> Response:
    cid = f"chatcmpl-{uuid.uuid4().hex}"
    choices, usage = [], {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for i in range(body.n):
        params = _params(body, max_new, i)
        try:
            text, used = await ticket.run(loaded.generator.complete, messages, params, ticket.stop)
        except ClientGone:
            return Response(status_code=499)  # nobody is listening; nginx's "client closed"
        except Refused as e:
            return _refused(e)
        except Exception as e:
            return _failed(e, cid)
        if ticket.gone:
            return Response(status_code=499)
        finish = "length" if used.get("completion_tokens", 0) >= params.max_new_tokens else "stop"
        choices.append(
            {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
                "logprobs": None,
            }
        )
        usage["prompt_tokens"] = used.get("prompt_tokens", 0)
        usage["completion_tokens"] += used.get("completion_tokens", 0)
        GEN_TOKENS.inc(used.get("completion_tokens", 0))
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return JSONResponse(
        {
            "id": cid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": loaded.target.name,
            "choices": choices,
            "usage": usage,
        }
    )
