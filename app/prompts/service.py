"""One import of a prompts or comparisons file: parse, then write in one transaction.

Synchronous on purpose: the API runs it in a helper process (app.ops.offload), so neither
parsing nor writing a file of up to 200 MB runs on, or competes with, the event loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.orm import Session

from app.config import get_settings
from app.prompts import parsing, store
from app.prompts.parsing import FileErrors, Record, Reject

Kind = Literal["prompts", "comparisons"]


@dataclass
class ImportResult:
    summary: store.ImportSummary
    rejects: list[Reject] = field(default_factory=list)


def accept(records: list[Record], rejects: list[Reject], skip_invalid: bool) -> None:
    """All or nothing unless skip_invalid; either way a file with no good record is refused."""
    if rejects and not skip_invalid:
        raise FileErrors([(r.line, r.message) for r in rejects])
    if not records:
        errors = [(r.line, r.message) for r in rejects]
        raise FileErrors(errors or [(0, "the file holds no records")])


def write(session: Session, kind: Kind, records: list[Record], required: int | None):
    """Store parsed records (flush only; the caller commits)."""
    if kind == "prompts":
        return store.import_prompts(session, records)
    default = required or get_settings().default_required_judgments
    return store.import_comparisons(session, records, default)[0]


def import_file(
    data: bytes,
    kind: Kind,
    fmt: str = "auto",
    filename: str = "",
    required: int | None = None,
    skip_invalid: bool = False,
    on_parsed: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Parse and import a whole file in its own transaction; FileErrors when refused."""
    from app.db import session_scope

    records, rejects = parsing.parse_all(data, kind, fmt, filename)
    accept(records, rejects, skip_invalid)
    if on_parsed is not None:
        on_parsed(len(records), len(rejects))
    with session_scope() as session:
        summary = write(session, kind, records, required)
    return ImportResult(summary, rejects)
