"""Pick the format of a labeled-preference file and parse it whole (line-numbered errors)."""

from __future__ import annotations

from typing import Any, Literal

from app.labeled_import import arena, hf, oasst
from app.labeled_import.records import LabeledRecord, jsonl_objects, parse_lines
from app.prompts.parsing import FileErrors, Reject

Format = Literal["auto", "hf", "oasst", "arena"]
FORMATS = ("auto", "hf", "oasst", "arena")


def detect(obj: Any) -> str | None:
    """'oasst' for message trees, 'hf' for chosen/rejected rows, 'arena' for battles."""
    if not isinstance(obj, dict):
        return None
    if "model_a" in obj and "winner" in obj:
        return "arena"
    if "message_tree_id" in obj or (
        isinstance(obj.get("prompt"), dict) and "replies" in obj["prompt"]
    ):
        return "oasst"
    if "chosen" in obj and "rejected" in obj:
        return "hf"
    return None


def parse_all(data: bytes, fmt: str = "auto") -> tuple[str, list[LabeledRecord], list[Reject]]:
    """The format used, every record, and every rejected line; FileErrors for the whole file
    (unknown format, no lines)."""
    if fmt not in FORMATS:
        raise FileErrors([(0, f"unknown format {fmt!r}; use auto, hf, oasst or arena")])
    objects = jsonl_objects(data)
    if not objects:
        raise FileErrors([(0, "the file holds no records")])
    if fmt == "auto":
        first = next(((n, obj) for n, obj, _, err in objects if err is None), None)
        found = detect(first[1]) if first else None
        if found is None:
            line = first[0] if first else objects[0][0]
            raise FileErrors(
                [(line, "cannot tell the format: expected an OpenAssistant tree "
                        "('message_tree_id', 'prompt' with 'replies') or a row with "
                        "'chosen' and 'rejected' or an arena battle ('model_a', 'winner'); "
                        "pass --format")]
            )  # fmt: skip
        fmt = found
    if fmt == "oasst":
        records, rejects = parse_lines(objects, oasst.parse_tree)
    elif fmt == "arena":
        records, rejects = parse_lines(objects, arena.parse_battle)
    else:
        seen: dict[str, int] = {}
        records, rejects = parse_lines(objects, lambda n, obj: [hf.parse_row(n, obj, seen)])
    return fmt, records, rejects


def accept(records: list[LabeledRecord], rejects: list[Reject], skip_invalid: bool) -> None:
    """All or nothing unless skip_invalid; a file without one ranked comparison is refused."""
    if rejects and not skip_invalid:
        raise FileErrors([(r.line, r.message) for r in rejects])
    if not records:
        errors = [(r.line, r.message) for r in rejects]
        raise FileErrors(
            errors or [(0, "the file holds no ranked comparisons (nothing to import)")]
        )


def parse(data: bytes, fmt: str = "auto") -> tuple[str, list[LabeledRecord]]:
    """Validate a whole JSONL file; returns the format used and its records (or FileErrors)."""
    fmt, records, rejects = parse_all(data, fmt)
    accept(records, rejects, skip_invalid=False)
    return fmt, records
