"""Record and read the audit trail. `record` only adds a row to the caller's session, so the
event commits (or rolls back) together with the action it describes."""

from __future__ import annotations

import csv
import getpass
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol

import orjson
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from app.models import AuditEvent, utcnow
from ml.limits import check_no_nul, replace_nul

# Every action the app records (docs/security.md lists them with their details).
ACTIONS = (
    "arena.start",
    "arena.stop",
    "audit.export",
    "export.preferences",
    "guidelines.edit",
    "import.comparisons",
    "import.preferences",
    "import.prompts",
    "model.activate",
    "run.cancel",
    "run.start",
    "token.create",
    "token.revoke",
    "user.activate",
    "user.create",
    "user.deactivate",
    "user.set_password",
    "user.set_role",
    "webhook.create",
    "webhook.set_active",
    "webhook.test",
)
ACTION_FILTER = re.compile(r"^[a-z_]+(\.[a-z_]+)?$")
EXPORT_FORMATS = ("csv", "jsonl")
COLUMNS = ("id", "at", "actor_id", "actor", "action", "target", "details", "ip")


class _Who(Protocol):
    user_id: int
    name: str


Actor = _Who | str | None


def cli_actor() -> str:
    """How a command-line action is attributed: the operating-system account that ran it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def client_ip(request: Any) -> str | None:
    """The caller's address as the ASGI server saw it (behind a proxy: run uvicorn with
    --proxy-headers and --forwarded-allow-ips so this is the client, not the proxy)."""
    client = getattr(request, "client", None)
    return client.host[:64] if client and client.host else None


def _clean(value: Any) -> Any:
    """JSON-safe details: PostgreSQL jsonb cannot hold NUL characters."""
    if isinstance(value, str):
        return replace_nul(value)
    if isinstance(value, dict):
        return {replace_nul(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_clean(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def record(
    session: Any,
    actor: Actor,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Add one audit event to `session` (sync or async; committed with the caller's work).

    actor: a Principal or User (id and name), a name, or None for the command line."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; add it to app.audit.ACTIONS")
    if actor is None or isinstance(actor, str):
        actor_id, name = None, actor or cli_actor()
    else:
        actor_id = getattr(actor, "user_id", None) or getattr(actor, "id", None)
        name = actor.name
    event = AuditEvent(
        at=utcnow(),
        actor_id=actor_id,
        actor_name=_clean(name)[:120],
        action=action,
        target=_clean(str(target))[:200],
        details=_clean(details or {}),
        ip=ip,
    )
    session.add(event)
    return event


class FilterError(ValueError):
    """A filter value that cannot be used (shown to the caller)."""


@dataclass(frozen=True)
class Filters:
    actor: str | None = None
    action: str | None = None  # "run" matches run.start and run.cancel; "run.start" only itself
    since: date | None = None  # first UTC day included
    until: date | None = None  # last UTC day included

    @classmethod
    def parse(
        cls, actor: str | None, action: str | None, since: str | None, until: str | None
    ) -> Filters:
        actor = (actor or "").strip() or None
        action = (action or "").strip() or None
        try:
            check_no_nul(actor or "", "actor")
        except ValueError as e:
            raise FilterError(str(e)) from None
        if action and not ACTION_FILTER.match(action):
            raise FilterError("action must look like 'run' or 'run.start'")

        def day(name: str, value: str | None) -> date | None:
            if not value or not value.strip():
                return None
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                raise FilterError(f"{name} must be a date (YYYY-MM-DD)") from None

        out = cls(actor, action, day("since", since), day("until", until))
        if out.since and out.until and out.since > out.until:
            raise FilterError("'since' must not be after 'until'")
        return out

    def as_query(self) -> dict[str, str]:
        return {
            k: str(v)
            for k, v in (
                ("actor", self.actor),
                ("action", self.action),
                ("since", self.since),
                ("until", self.until),
            )
            if v
        }


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0)).replace(tzinfo=utcnow().tzinfo)


def _select(f: Filters) -> Select[tuple[AuditEvent]]:
    q = select(AuditEvent)
    if f.actor:
        q = q.where(AuditEvent.actor_name == f.actor)
    if f.action:
        q = q.where(
            or_(AuditEvent.action == f.action, AuditEvent.action.startswith(f.action + "."))
        )
    if f.since:
        q = q.where(AuditEvent.at >= _midnight(f.since))
    if f.until:
        q = q.where(AuditEvent.at < _midnight(f.until + timedelta(days=1)))
    return q


def search(
    session: Session, f: Filters, limit: int = 100, before_id: int | None = None
) -> list[AuditEvent]:
    """Newest events first; `before_id` pages to older ones."""
    q = _select(f)
    if before_id is not None:
        q = q.where(AuditEvent.id < before_id)
    return list(session.scalars(q.order_by(AuditEvent.id.desc()).limit(limit)))


def as_dict(e: AuditEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "actor_id": e.actor_id,
        "actor": e.actor_name,
        "action": e.action,
        "target": e.target,
        "details": e.details,
        "ip": e.ip,
    }


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def encode(events: list[dict[str, Any]], fmt: str, header: bool) -> bytes:
    """A batch of events as CSV rows (header first when asked) or JSON lines."""
    if fmt == "jsonl":
        return b"".join(orjson.dumps(e) + b"\n" for e in events)
    buf = io.StringIO()
    w = csv.writer(buf)
    if header:
        w.writerow(COLUMNS)
    for e in events:
        details = orjson.dumps(e["details"]).decode()
        w.writerow([_cell(e[c]) if c != "details" else _cell(details) for c in COLUMNS])
    return buf.getvalue().encode()


def iter_export(f: Filters, fmt: str, batch: int = 1000) -> Iterator[bytes]:
    """The filtered trail, oldest first, from one read snapshot that never takes the SQLite
    writer lock (the export's own connection, as dataset exports do)."""
    from app.exports.query import read_connection

    with read_connection() as conn:
        session = Session(bind=conn)
        after, first = 0, True
        while True:
            q = _select(f).where(AuditEvent.id > after).order_by(AuditEvent.id).limit(batch)
            rows = [as_dict(e) for e in session.scalars(q)]
            session.expunge_all()
            if first or rows:
                yield encode(rows, fmt, header=first)
            first = False
            if len(rows) < batch:
                return
            after = rows[-1]["id"]
