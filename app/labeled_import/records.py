"""The record every labeled-data parser produces, and the file-level driver."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.ops.errors import check_no_nul
from app.prompts.parsing import Reject, jsonl_lines


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
    models: tuple[str, str] | None = None  # arena battles: who wrote completions[0] and [1]


def content_id(obj: Any) -> str:
    """A stable id for content (so re-importing the same file is idempotent)."""
    data = json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(data).hexdigest()[:32]


def jsonl_objects(data: bytes) -> list[tuple[int, Any, str, str | None]]:
    """(line number, parsed object or None, raw line, error or None) for each non-blank line."""
    return [(n, obj, raw, err) for n, raw, obj, err in jsonl_lines(data)]


def _check_text(record: LabeledRecord) -> None:
    texts = [m["content"] for m in record.messages] + record.completions + record.tags
    texts.append(record.external_id)
    try:
        for t in texts:
            check_no_nul(t)
    except ValueError as exc:
        raise RecordError(str(exc)) from None


def parse_lines(
    objects: list[tuple[int, Any, str, str | None]],
    parse: Callable[[int, Any], list[LabeledRecord]],
) -> tuple[list[LabeledRecord], list[Reject]]:
    """Run `parse` on every well-formed line; every bad line becomes a Reject (with its text)."""
    records: list[LabeledRecord] = []
    rejects: list[Reject] = []
    for n, obj, raw, err in objects:
        if err is not None:
            rejects.append(Reject(n, err, raw))
            continue
        try:
            parsed = parse(n, obj)
            for record in parsed:
                _check_text(record)
            records.extend(parsed)
        except RecordError as e:
            rejects.append(Reject(n, str(e), raw))
        except RecursionError:
            rejects.append(Reject(n, "nested too deeply", raw))
    return records, rejects
