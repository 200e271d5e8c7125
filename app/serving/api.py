"""OpenAI-compatible endpoints for the active policy: /v1/chat/completions (plain and SSE
streaming) and /v1/models. Any signed-in account may call them with its API token (Bearer)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from app.auth.deps import AnyUser, SessionDep
from app.config import get_settings
from app.serving.engine import ALIAS, Loaded, NoModel, ServingEngine
from app.serving.schemas import ChatRequest

router = APIRouter(prefix="/v1", tags=["serving"])


def engine_for(request: Request) -> ServingEngine:
    """The app's serving engine, created on first use (the model itself loads lazily too)."""
    state = request.app.state
    if getattr(state, "serving_engine", None) is None:
        state.serving_engine = ServingEngine(get_settings())
    return state.serving_engine  # type: ignore[no-any-return]


def error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    """OpenAI-style error body."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


def _params(body: ChatRequest, seed_offset: int = 0) -> Any:
    from ml.generate import GenerationParams

    s = get_settings()
    seed = body.seed + seed_offset if body.seed is not None else None
    return GenerationParams(
        max_new_tokens=body.max_completion_tokens or body.max_tokens or s.max_new_tokens,
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


def _stream(loaded: Loaded, body: ChatRequest, messages: list[dict]) -> Iterator[bytes]:
    """SSE chunks in the OpenAI format; runs in Starlette's thread pool (sync iterator)."""
    cid = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    base = {"id": cid, "object": "chat.completion.chunk", "created": created}
    base["model"] = loaded.target.name
    for i in range(body.n):
        first = {"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        yield _sse({**base, "choices": [first]})
        try:
            for delta in loaded.generator.stream(messages, _params(body, i)):
                choice = {"index": i, "delta": {"content": delta}, "finish_reason": None}
                yield _sse({**base, "choices": [choice]})
        except Exception as e:  # headers are sent: report in-band, as OpenAI servers do
            yield _sse({"error": {"message": f"generation failed: {e}", "type": "server_error"}})
            yield b"data: [DONE]\n\n"
            return
        yield _sse({**base, "choices": [{"index": i, "delta": {}, "finish_reason": "stop"}]})
    if body.stream_options and body.stream_options.include_usage:
        yield _sse({**base, "choices": [], "usage": None})
    yield b"data: [DONE]\n\n"


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatRequest, request: Request, session: SessionDep, _: AnyUser
) -> JSONResponse | StreamingResponse:
    """Generate with the active policy (the generation runs in a thread, never on the loop)."""
    engine = engine_for(request)
    try:
        loaded = await engine.current(session)
    except NoModel as e:  # like vLLM for an unknown model (5xx is kept for real faults)
        return error(404, str(e), "invalid_request_error", "model_not_found")
    if body.model and body.model not in engine.names():
        return error(
            404,
            f"model {body.model!r} is not served here; use {loaded.target.name!r} or {ALIAS!r}",
            "invalid_request_error",
            "model_not_found",
        )
    messages = [m.plain() for m in body.messages]
    await session.commit()  # release the connection before a long generation
    if body.stream:
        return StreamingResponse(
            _stream(loaded, body, messages),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    choices, usage = [], {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for i in range(body.n):
        params = _params(body, i)
        try:
            text, used = await asyncio.to_thread(loaded.generator.complete, messages, params)
        except Exception as e:
            return error(500, f"generation failed: {e}", "server_error")
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
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return JSONResponse(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": loaded.target.name,
            "choices": choices,
            "usage": usage,
        }
    )
