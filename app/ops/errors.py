"""Error bodies every JSON route can answer with, for the OpenAPI schema and its clients."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, BaseModel, Field

from ml.limits import INT32_MAX, check_no_nul


class ValidationIssue(BaseModel):
    """One request validation error: where (`loc`), what (`msg`), which rule (`type`)."""

    loc: list[str | int]
    msg: str
    type: str


class LineError(BaseModel):
    """One rejected line of an imported file (line 0: the file as a whole)."""

    line: int
    message: str


class OpenAIError(BaseModel):
    """The OpenAI error object, for clients of the /v1 routes."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorOut(BaseModel):
    """Every 4xx body: `detail` is a message, or for request validation a list of issues.
    Import routes add the rejected `errors` by line; /v1 routes add the OpenAI `error` object."""

    detail: str | list[ValidationIssue]
    errors: list[LineError] | None = Field(None, description="imports: rejected lines")
    error: OpenAIError | None = Field(None, description="/v1: the same error, OpenAI-shaped")


def err(description: str, **extra: Any) -> dict[str, Any]:
    """One documented error response (ErrorOut) for `responses=`."""
    return {"model": ErrorOut, "description": description, **extra}


RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}

# Router-level `responses=` for every JSON router: what bad input gets (see docs/bad-input.md).
# tests/reliability/test_error_shape.py checks that every 4xx in the schema uses ErrorOut.
API_ERRORS: dict[int | str, dict[str, Any]] = {
    400: err("body is not parseable (e.g. not UTF-8 JSON)"),
    401: err("no, malformed, invalid or revoked credentials"),
    403: err("wrong role, or a cookie write without CSRF token"),
    404: err("no such resource (the message names it)"),
    409: err("conflicts with the current state (the message says which)"),
    413: err("request body over the size limit"),
    422: err("request does not validate; nothing was changed"),
}

# the /v1 routes: the same shape, plus the OpenAI `error` object and the generation limits
V1_ERRORS: dict[int | str, dict[str, Any]] = {
    **{code: v for code, v in API_ERRORS.items() if code != 409},
    400: err(
        "not servable as asked: max_tokens or n over the server's caps, or the prompt and "
        "max_tokens exceed the model's context"
    ),  # fmt: skip
    404: err("the model is not served here, or no policy is active yet"),
    429: err("too many of this user's requests in flight", headers=RETRY_AFTER),
    502: err("the external generation server failed or cannot be reached"),
    503: err("generation queue full or no slot in time", headers=RETRY_AFTER),
}


def error_body(message: str | list[dict[str, Any]], status: int, path: str) -> dict[str, Any]:
    """The ErrorOut body for `message`; under /v1 with the OpenAI `error` object too."""
    body: dict[str, Any] = {"detail": message}
    if path.startswith("/v1/"):
        text = message if isinstance(message, str) else _issues_text(message)
        body["error"] = openai_error(text, status)
    return body


def openai_error(
    message: str, status: int, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    kind = {
        401: "authentication_error",
        403: "permission_error",
        404: "invalid_request_error",
        429: "rate_limit_exceeded",
    }.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"message": message, "type": kind, "param": param, "code": code}


def _issues_text(issues: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in i.get('loc', [])[1:]) or 'body'}: {i.get('msg', '')}"
        for i in issues[:5]
    )


# a database id in a path: ids are 32-bit on PostgreSQL, so larger ones cannot exist (and would
# raise "integer out of range" there, or overflow SQLite past 2**63) -- 422 instead of a 500
MAX_DB_ID = INT32_MAX
DbId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]


# free text bound for the database: PostgreSQL text and jsonb cannot hold NUL characters
PlainText = Annotated[str, AfterValidator(check_no_nul)]
