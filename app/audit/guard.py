"""Database triggers that make audit_log append-only: UPDATE and DELETE fail on every backend,
whatever code (or SQL typed into the app) tries them. Used by migration 0003."""

from __future__ import annotations

MESSAGE = "audit_log is append-only"

POSTGRES_CREATE = [
    "CREATE OR REPLACE FUNCTION prefloop_audit_append_only() RETURNS trigger "
    f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION prefloop_audit_append_only()",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "DROP FUNCTION IF EXISTS prefloop_audit_append_only()",
]

SQLITE_CREATE = [
    f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
    for verb in ("UPDATE", "DELETE")
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS audit_log_no_{v}" for v in ("update", "delete")]


def statements(dialect: str, create: bool) -> list[str]:
    if dialect == "postgresql":
        return POSTGRES_CREATE if create else POSTGRES_DROP
    return SQLITE_CREATE if create else SQLITE_DROP
