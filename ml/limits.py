"""Limits every layer shares (ml has no dependencies, so app and workers import them from here)."""

from __future__ import annotations

#: the largest 32-bit signed integer: database ids are int4, and seeds and counts stay within it
INT32_MAX = 2**31 - 1


def has_nul(value: str) -> bool:
    """The one NUL test: PostgreSQL text and jsonb cannot hold U+0000."""
    return "\x00" in value


def check_no_nul(value: str, what: str = "text") -> str:
    """`value`, or ValueError naming `what` when it holds a NUL character."""
    if has_nul(value):
        raise ValueError(f"{what} must not contain NUL (\\u0000) characters")
    return value


def replace_nul(value: str) -> str:
    """Text from a model or a log made storable: each NUL becomes U+FFFD (the replacement
    character), for text that must be kept rather than refused."""
    return value.replace("\x00", "\ufffd")
