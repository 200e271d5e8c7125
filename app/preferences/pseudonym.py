"""Stable, non-reversible labeler ids for exports: an HMAC of the user id with the secret key."""

from __future__ import annotations

import hashlib
import hmac

from app.config import get_settings


def labeler_pseudonym(user_id: int) -> str:
    """`lab_` + 16 hex chars of HMAC-SHA256(secret_key, "labeler:<id>")."""
    key = get_settings().secret_key.encode()
    digest = hmac.new(key, f"labeler:{user_id}".encode(), hashlib.sha256).hexdigest()
    return "lab_" + digest[:16]
