"""Password hashing (argon2), API token generation and hashing, CSRF tokens."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import weakref
from typing import Any

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
TOKEN_PREFIX = "pfl_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# a hash of a random password, with the same parameters as real ones: verifying an unknown
# account's login costs as long as a known one's
DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

# argon2 is slow on purpose (~50-150 ms of CPU): never on the event loop, and at most a few at a
# time per process so a burst of logins cannot take every worker thread
_VERIFY_SLOTS = 2
_limiters: weakref.WeakKeyDictionary[Any, anyio.CapacityLimiter] = weakref.WeakKeyDictionary()


async def verify_password_off_loop(password_hash: str, password: str) -> bool:
    loop = asyncio.get_running_loop()  # a limiter belongs to one event loop
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(_VERIFY_SLOTS)
    return await anyio.to_thread.run_sync(verify_password, password_hash, password, limiter=limiter)


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens carry 256 bits of entropy, so a fast hash is enough (and keeps auth cheap)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)
