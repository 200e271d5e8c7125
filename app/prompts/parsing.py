"""Parse prompt and comparison files (JSONL or CSV) into validated records, line by line.

A file is accepted whole or not at all: every problem is reported with its line number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.ops.errors import PlainText

ROLES = ("system", "user", "assistant")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: PlainText


class CompletionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: PlainText = Field(min_length=1)
    source: PlainText | None = Field(None, max_length=200)


class PromptLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: PlainText | list[ChatMessage]
    tags: list[PlainText] = []

    @field_validator("prompt")
    @classmethod
    def _non_empty(cls, v: str | list[ChatMessage]) -> str | list[ChatMessage]:
        if isinstance(v, str) and not v.strip():
            raise ValueError("prompt is empty")
        if isinstance(v, list) and not v:
            raise ValueError("prompt has no messages")
        return v


class ComparisonLine(PromptLine):
    completions: list[PlainText | CompletionIn]
    required_judgments: int | None = Field(None, ge=1, le=100)

    @field_validator("completions")
    @classmethod
    def _k(cls, v: list[str | CompletionIn]) -> list[str | CompletionIn]:
        if len(v) < 2:
            raise ValueError("a comparison needs at least 2 completions")
        if len(v) > 16:
            raise ValueError("at most 16 completions per comparison")
        if any(isinstance(c, str) and not c.strip() for c in v):
            raise ValueError("completions must not be empty")
        texts = [c if isinstance(c, str) else c.text for c in v]
        if len(set(texts)) != len(texts):
            raise ValueError("completions of one comparison must differ")
        return v


@dataclass
class Record:
    line: int
    messages: list[dict[str, str]]
    is_chat: bool
    tags: list[str]
    completions: list[tuple[str, str | None]] = field(default_factory=list)
    required_judgments: int | None = None


class FileErrors(ValueError):
    """The file was rejected; `errors` holds (line, message) pairs."""

    def __init__(self, errors: list[tuple[int, str]]):
        self.errors = errors
        shown = "\n".join(f"line {n}: {m}" for n, m in errors[:50])
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} error(s); nothing was imported\n{shown}{more}")


def _message(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:3]:
        loc = ".".join(
            str(p)
            for p in err["loc"]
            if not str(p).startswith(("str", "list[", "CompletionIn", "function"))
        )
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _to_record(line: int, obj: Any, kind: str) -> Record:
    model = ComparisonLine if kind == "comparisons" else PromptLine
    parsed = model.model_validate(obj)
    if isinstance(parsed.prompt, str):
        messages, is_chat = [{"role": "user", "content": parsed.prompt}], False
    else:
        messages, is_chat = [m.model_dump() for m in parsed.prompt], True
        if messages[-1]["role"] == "assistant":
            raise ValueError("a chat prompt must not end with an assistant message")
    rec = Record(line=line, messages=messages, is_chat=is_chat, tags=parsed.tags)
    if isinstance(parsed, ComparisonLine):
        rec.completions = [
            (c, None) if isinstance(c, str) else (c.text, c.source) for c in parsed.completions
        ]
        rec.required_judgments = parsed.required_judgments
    return rec


def _jsonl_objects(text: str) -> Iterable[tuple[int, Any, str | None]]:
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield n, json.loads(raw), None
        except json.JSONDecodeError as e:
            yield n, None, f"invalid JSON: {e.msg} at column {e.colno}"


def _csv_objects(text: str, kind: str) -> Iterable[tuple[int, Any, str | None]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    cols = reader.fieldnames or []
    if "prompt" not in cols:
        yield 1, None, "CSV header must have a 'prompt' column"
        return
    comp_cols = sorted(
        (c for c in cols if c.startswith("completion_")),
        key=lambda c: int(c.split("_", 1)[1]) if c.split("_", 1)[1].isdigit() else 10**6,
    )
    if kind == "comparisons" and len(comp_cols) < 2:
        yield 1, None, "CSV header needs columns completion_1 ... completion_K (K >= 2)"
        return
    for row in reader:
        n = reader.line_num
        if None in row:
            yield n, None, "more fields than the header has"
            continue
        obj: dict[str, Any] = {"prompt": row["prompt"] or ""}
        if row.get("tags"):
            obj["tags"] = [t.strip() for t in row["tags"].split(",") if t.strip()]
        if kind == "comparisons":
            obj["completions"] = [row[c] for c in comp_cols if row.get(c)]
            if row.get("required_judgments"):
                try:
                    obj["required_judgments"] = int(row["required_judgments"])
                except ValueError:
                    yield n, None, "required_judgments must be a whole number"
                    continue
        yield n, obj, None


def parse(
    data: bytes, kind: Literal["prompts", "comparisons"], fmt: str = "auto", filename: str = ""
) -> list[Record]:
    """Validate a whole file; raise FileErrors listing every bad line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FileErrors([(text_line(data, e.start), "file is not valid UTF-8")]) from None
    if fmt == "auto":
        fmt = "csv" if filename.lower().endswith(".csv") else "jsonl"
    if fmt not in ("jsonl", "csv"):
        raise FileErrors([(0, f"unknown format {fmt!r}; use jsonl or csv")])
    objects = _jsonl_objects(text) if fmt == "jsonl" else _csv_objects(text, kind)
    records: list[Record] = []
    errors: list[tuple[int, str]] = []
    for n, obj, err in objects:
        if err:
            errors.append((n, err))
            continue
        try:
            records.append(_to_record(n, obj, kind))
        except ValidationError as e:
            errors.append((n, _message(e)))
        except ValueError as e:
            errors.append((n, str(e)))
    if errors:
        raise FileErrors(errors)
    if not records:
        raise FileErrors([(0, "the file holds no records")])
    return records


def text_line(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n") + 1
