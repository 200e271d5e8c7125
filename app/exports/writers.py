"""Encode a stream of rows as JSONL, CSV or Parquet chunks, incrementally (constant memory)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

CHUNK_BYTES = 256 * 1024
ROW_GROUP = 5000
MEDIA_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def _jsonl(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    buf: list[bytes] = []
    size = 0
    for row in rows:
        line = json.dumps(row, ensure_ascii=False, default=_default).encode() + b"\n"
        buf.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield b"".join(buf)
            buf, size = [], 0
    if buf:
        yield b"".join(buf)


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=_default)
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else value


def _csv(rows: Iterable[dict[str, Any]], columns: list[str]) -> Iterator[bytes]:
    """Nested values (messages, rankings, ratings) are JSON-encoded cells."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
        if out.tell() >= CHUNK_BYTES:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()


class _Sink(io.RawIOBase):
    """A write-only file that hands its bytes out in chunks (Parquet writes to it)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.parts.append(data)
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self.pos

    def drain(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _parquet(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> Iterator[bytes]:
    """One row group per ROW_GROUP rows, via ParquetWriter: only one batch in memory."""
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= ROW_GROUP:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            batch = []
            yield sink.drain()
    if batch:
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    writer.close()
    yield sink.drain()


def encode(rows: Iterable[dict[str, Any]], fmt: str, schema: pa.Schema) -> Iterator[bytes]:
    """Chunks of the encoded file; the schema fixes column order (and types for Parquet)."""
    if fmt == "jsonl":
        return _jsonl(rows)
    if fmt == "csv":
        return _csv(rows, schema.names)
    if fmt == "parquet":
        return _parquet(rows, schema)
    raise ValueError(f"unknown format {fmt!r}")


class Digest:
    """Counts and hashes the bytes passing through."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0

    def tap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if chunk:
                self.sha.update(chunk)
                self.size += len(chunk)
                yield chunk

    @property
    def hexdigest(self) -> str:
        return self.sha.hexdigest()
