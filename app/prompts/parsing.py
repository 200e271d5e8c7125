"""Parse prompt and comparison files (JSONL or CSV) into validated records, line by line.

A file is accepted whole or not at all: every problem is reported with its line number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.ops.errors import INT32_MAX, PlainText

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

    def __reduce__(self) -> tuple[type[FileErrors], tuple[list[tuple[int, str]]]]:
        return FileErrors, (self.errors,)  # imports run in a helper process (app.ops.offload)


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


@dataclass
class Reject:
    """A line left out by --skip-invalid: its number, why, and its original content."""

    line: int
    message: str
    content: str | dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "reason": self.message}
        if isinstance(self.content, str):
            out["text"] = self.content
        elif self.content is not None:
            out["row"] = self.content
        return out


def jsonl_lines(data: bytes) -> Iterator[tuple[int, str, Any, str | None]]:
    """(line number, raw text, parsed object or None, error or None) for each non-blank line.

    Lines are split on "\n" only: U+2028, U+0085 and other characters that str.splitlines()
    treats as breaks are legal inside JSON strings. Each line is decoded on its own, so a bad
    byte spoils one line, not the file."""
    lines = io.BytesIO(data)  # iterates on b"\n" without a second copy of a 200 MB file
    if data.startswith(b"\xef\xbb\xbf"):
        lines.seek(3)
    for n, raw_bytes in enumerate(lines, start=1):
        try:
            raw = raw_bytes.decode("utf-8").removesuffix("\n").removesuffix("\r")
        except UnicodeDecodeError as e:
            text = raw_bytes.decode("utf-8", "replace").removesuffix("\n")
            yield n, text, None, f"not valid UTF-8 (byte {e.start + 1} of the line)"
            continue
        if not raw.strip():
            continue
        try:
            yield n, raw, json.loads(raw), None
        except json.JSONDecodeError as e:
            yield n, raw, None, f"invalid JSON: {e.msg} at column {e.colno}"
        except RecursionError:
            yield n, raw, None, "invalid JSON: nested too deeply"


def _jsonl_objects(data: bytes) -> Iterable[tuple[int, Any, str | None, Any]]:
    for n, raw, obj, err in jsonl_lines(data):
        yield n, obj, err, raw


# a CSV field may be as long as the largest import (csv refuses fields over 128 KB by default)
csv.field_size_limit(INT32_MAX)


def _completion_order(col: str) -> int | None:
    """N of a completion_N column (None when N is not a number; "²".isdigit() is True)."""
    suffix = col.split("_", 1)[1]
    return int(suffix) if suffix.isascii() and suffix.isdigit() else None


def _csv_objects(text: str, kind: str) -> Iterable[tuple[int, Any, str | None, Any]]:
    """Rows as objects; a bad header raises FileErrors (nothing can be read without it)."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        cols = reader.fieldnames or []
    except csv.Error as e:
        raise FileErrors([(1, f"CSV header: {e}")]) from None
    if "prompt" not in cols:
        raise FileErrors([(1, "CSV header must have a 'prompt' column")])
    odd = [c for c in cols if c.startswith("completion_") and _completion_order(c) is None]
    if odd:
        message = f"CSV header: column {odd[0]!r} must be completion_N (N = 1, 2, ...)"
        raise FileErrors([(1, message)])
    comp_cols = sorted(
        (c for c in cols if c.startswith("completion_")), key=lambda c: _completion_order(c) or 0
    )
    if kind == "comparisons" and len(comp_cols) < 2:
        raise FileErrors([(1, "CSV header needs columns completion_1 ... completion_K (K >= 2)")])
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:  # the reader cannot go on after this: the rest is one error
            yield reader.line_num, None, f"CSV: {e}", None
            return
        n = reader.line_num
        if None in row:
            yield n, None, "more fields than the header has", row[None]
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
                    yield n, None, "required_judgments must be a whole number", dict(row)
                    continue
        yield n, obj, None, dict(row)


def parse_all(
    data: bytes, kind: Literal["prompts", "comparisons"], fmt: str = "auto", filename: str = ""
) -> tuple[list[Record], list[Reject]]:
    """Every good record and every rejected line of a file. Problems with the file as a whole
    (not UTF-8 CSV, no header, unknown format) raise FileErrors."""
    if fmt == "auto":
        fmt = "csv" if filename.lower().endswith(".csv") else "jsonl"
    if fmt not in ("jsonl", "csv"):
        raise FileErrors([(0, f"unknown format {fmt!r}; use jsonl or csv")])
    if fmt == "csv":
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise FileErrors([(text_line(data, e.start), "file is not valid UTF-8")]) from None
        objects = _csv_objects(text, kind)
    else:
        objects = _jsonl_objects(data)
    records: list[Record] = []
    rejects: list[Reject] = []
    for n, obj, err, content in objects:
        if err:
            rejects.append(Reject(n, err, content))
            continue
        try:
            records.append(_to_record(n, obj, kind))
        except ValidationError as e:
            rejects.append(Reject(n, _message(e), content))
        except ValueError as e:
            rejects.append(Reject(n, str(e), content))
    return records, rejects


def parse(
    data: bytes, kind: Literal["prompts", "comparisons"], fmt: str = "auto", filename: str = ""
) -> list[Record]:
    """Validate a whole file; raise FileErrors listing every bad line."""
    records, rejects = parse_all(data, kind, fmt, filename)
    if rejects:
        raise FileErrors([(r.line, r.message) for r in rejects])
    if not records:
        raise FileErrors([(0, "the file holds no records")])
    return records


def text_line(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n") + 1


def rejects_path(file: str) -> str:
    """Where --skip-invalid writes the lines it left out: FILE.rejects.jsonl."""
    return ("import" if file in ("", "-") else file) + ".rejects.jsonl"


def write_rejects(path: str, rejects: list[Reject]) -> None:
    """One JSON object per rejected line: {"line", "reason", "text" (JSONL) or "row" (CSV)}."""
    with open(path, "w", encoding="utf-8") as out:
        for r in rejects:
            out.write(json.dumps(r.as_json(), ensure_ascii=False) + "\n")
