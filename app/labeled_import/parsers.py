"""Pick the format of a labeled-preference file and parse it whole (line-numbered errors)."""

from __future__ import annotations

from typing import Any, Literal

from app.labeled_import import hf, oasst
from app.labeled_import.records import LabeledRecord, jsonl_objects, parse_lines
from app.prompts.parsing import FileErrors

Format = Literal["auto", "hf", "oasst"]
FORMATS = ("auto", "hf", "oasst")


def detect(obj: Any) -> str | None:
    """'oasst' for message trees, 'hf' for chosen/rejected rows, None if neither."""
    if not isinstance(obj, dict):
        return None
    if "message_tree_id" in obj or (
        isinstance(obj.get("prompt"), dict) and "replies" in obj["prompt"]
    ):
        return "oasst"
    if "chosen" in obj and "rejected" in obj:
        return "hf"
    return None


def parse(data: bytes, fmt: str = "auto") -> tuple[str, list[LabeledRecord]]:
    """Validate a whole JSONL file; returns the format used and its records (or FileErrors)."""
    if fmt not in FORMATS:
        raise FileErrors([(0, f"unknown format {fmt!r}; use auto, hf or oasst")])
    objects = list(jsonl_objects(data))
    if not objects:
        raise FileErrors([(0, "the file holds no records")])
    if fmt == "auto":
        line, first = objects[0]
        found = detect(first)
        if found is None:
            raise FileErrors(
                [(line, "cannot tell the format: expected an OpenAssistant tree "
                        "('message_tree_id', 'prompt' with 'replies') or a row with "
                        "'chosen' and 'rejected'; pass --format")]
            )  # fmt: skip
        fmt = found
    if fmt == "oasst":
        records = parse_lines(objects, oasst.parse_tree)
    else:
        seen: dict[str, int] = {}
        records = parse_lines(objects, lambda n, obj: [hf.parse_row(n, obj, seen)])
    if not records:
        raise FileErrors([(0, "the file holds no ranked comparisons (nothing to import)")])
    return fmt, records
