"""Error bodies every JSON route can answer with, for the OpenAPI schema and its clients."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, BaseModel


class ErrorOut(BaseModel):
    """`detail` is a message, or for request validation a list of {loc, msg, type}."""

    detail: str | list[dict[str, Any]]


# Router-level `responses=` for JSON APIs: what bad input gets (see docs/bad-input.md).
API_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "body is not parseable (e.g. not UTF-8 JSON)"},
    401: {"model": ErrorOut, "description": "no, malformed, invalid or revoked credentials"},
    403: {"model": ErrorOut, "description": "wrong role, or a cookie write without CSRF token"},
    413: {"model": ErrorOut, "description": "request body over the size limit"},
    422: {"model": ErrorOut, "description": "request does not validate; nothing was changed"},
}

# a database id in a path: ids are 32-bit on PostgreSQL, so larger ones cannot exist (and would
# raise "integer out of range" there, or overflow SQLite past 2**63) -- 422 instead of a 500
DbId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return value


# free text bound for the database: PostgreSQL text and jsonb cannot hold NUL characters
PlainText = Annotated[str, AfterValidator(_no_nul)]
