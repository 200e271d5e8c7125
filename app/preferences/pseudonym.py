"""Stable, non-reversible labeler ids for exports: an HMAC of the user id with its own key."""

from __future__ import annotations

import hashlib
import hmac

from app.auth.keys import pseudonym_key


def labeler_pseudonym(user_id: int) -> str:
    """`lab_` + 16 hex chars of HMAC-SHA256(pseudonym key, "labeler:<id>") (app.auth.keys)."""
    digest = hmac.new(pseudonym_key(), f"labeler:{user_id}".encode(), hashlib.sha256).hexdigest()
    return "lab_" + digest[:16]
