"""The audit trail: who did what, when, from where (append-only)."""

from app.audit.service import ACTIONS, client_ip, record

__all__ = ["ACTIONS", "client_ip", "record"]
