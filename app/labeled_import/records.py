"""The record every labeled-data parser produces, and the file-level driver."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from app.prompts.parsing import FileErrors, text_line


class RecordError(ValueError):
    """One line is malformed (reported with its line number)."""


@dataclass
class LabeledRecord:
    """A prompt, its candidates and one judgment: `ranking` holds indices into `completions`."""

    line: int
    messages: list[dict[str, str]]
    is_chat: bool
    completions: list[str]
    ranking: list[list[int]]
    external_id: str
    choice: str | None = None
    tags: list[str] = field(default_factory=list)


def content_id(obj: Any) -> str:
    """A stable id for content (so re-importing the same file is idempotent)."""
    data = json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(data).hexdigest()[:32]


def jsonl_objects(data: bytes) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) for each non-blank line; raises FileErrors on bad JSON/UTF-8."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FileErrors([(text_line(data, e.start), "file is not valid UTF-8")]) from None
    errors = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield n, json.loads(raw)
        except json.JSONDecodeError as e:
            errors.append((n, f"invalid JSON: {e.msg} at column {e.colno}"))
    if errors:
        raise FileErrors(errors)


def parse_lines(
    objects: list[tuple[int, Any]], parse: Callable[[int, Any], list[LabeledRecord]]
) -> list[LabeledRecord]:
    """Run `parse` on every line, collecting every line's error; all or nothing."""
    records: list[LabeledRecord] = []
    errors: list[tuple[int, str]] = []
    for n, obj in objects:
        try:
            records.extend(parse(n, obj))
        except RecordError as e:
            errors.append((n, str(e)))
    if errors:
        raise FileErrors(errors)
    return records
