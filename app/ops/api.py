"""Operational routes: liveness and readiness."""

from app.ops.health import router

__all__ = ["router"]
