"""Hugging Face dataset directories: `Dataset.save_to_disk` plus the dataset card as README.md
with the YAML metadata the Hub reads; optionally pushed to a Hub dataset repository.

The rows are those of the shape's Parquet export, with the same columns, so RewardTrainer takes
the trl shape as is; `datasets` has no map type, so the raw shape's `ratings` map becomes a list
of {key, value}.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import delete

from app.exports.query import FilterError
from app.exports.schemas import ExportFilters
from app.exports.service import Export, Progress, check, finish_snapshot, start_snapshot
from app.models import DatasetSnapshot

FORMAT = "hf"
TAGS = ["prefloop", "rlhf", "preference", "human-feedback"]
SHAPE_TAGS = {"trl": ["reward-modeling", "trl"], "raw": ["annotations"], "rankings": ["ranking"]}


def size_category(rows: int) -> str:
    """The Hub's size_categories bucket for a row count."""
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
    ):
        if rows < limit:
            return name
    return "100M<n<1B"


def readme(card: str, shape: str, rows: int, snapshot_id: int, license: str) -> str:
    """README.md: Hub metadata (YAML front matter) followed by the snapshot's dataset card."""
    from huggingface_hub import DatasetCardData

    meta = DatasetCardData(
        pretty_name=f"prefloop preference snapshot {snapshot_id} ({shape})",
        license=license,
        task_categories=["text-classification"] if shape == "trl" else ["text-generation"],
        size_categories=[size_category(rows)],
        tags=TAGS + SHAPE_TAGS.get(shape, []),
    )
    loading = (
        "## Loading this directory\n\n```python\nfrom datasets import load_from_disk\n"
        'ds = load_from_disk("path/to/this/directory")\n```\n\n'
        "After `prefloop export preferences --format hf --push-to-hub REPO`: "
        '`load_dataset("REPO", split="train")`.\n'
    )
    return f"---\n{meta.to_yaml()}\n---\n\n{card}\n\n{loading}"


def hf_target_ok(out_dir: Path) -> None:
    """FilterError unless `out_dir` is new or an empty directory."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FilterError(f"{out_dir} exists and is not an empty directory; choose a new one")


def export_to_hf_dir(
    filters: ExportFilters,
    shape: str,
    out_dir: Path,
    user_id: int | None = None,
    progress: Progress | None = None,
    license: str = "other",
    actor: Any = None,
) -> tuple[int, Export]:
    """Write the export as a `save_to_disk` directory with README.md; returns (snapshot id,
    export). Built in a hidden sibling directory and renamed into place when complete. The
    export is audited as `actor` (None: the command line's operating-system account)."""
    from datasets import Dataset

    from app.audit import record
    from app.db import session_scope

    check(shape, "parquet", filters)
    hf_target_ok(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        with session_scope() as session:
            snap = start_snapshot(session, shape, FORMAT, filters, user_id)
            details = {"shape": shape, "format": FORMAT, "filters": snap.filters}
            details["directory"] = str(out_dir)
            record(session, actor, "export.preferences", f"snapshot {snap.id}", details)
            snapshot_id = snap.id
        export = Export(filters, shape, "parquet")
        part = work / "rows.parquet"
        with part.open("wb") as fh:
            for chunk in export.chunks(progress):
                fh.write(chunk)
        if not export.stats.rows:  # datasets cannot load a saved dataset without rows
            with session_scope() as session:
                session.execute(delete(DatasetSnapshot).where(DatasetSnapshot.id == snapshot_id))
            raise FilterError("the filters select no rows; nothing written")
        part = without_maps(part, work / "rows-nomap.parquet")
        staged = work / "dataset"
        ds = Dataset.from_parquet(str(part), cache_dir=str(work / "cache"), split="train")
        ds.save_to_disk(str(staged))
        del ds
        with session_scope() as session:
            card = finish_snapshot(session, snapshot_id, export, out_dir.name)
        text = readme(card, shape, export.stats.rows, snapshot_id, license)
        (staged / "README.md").write_text(text, encoding="utf-8")
        hf_target_ok(out_dir)
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(staged, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return snapshot_id, export


def _entries(t: pa.MapType) -> pa.DataType:
    return pa.list_(pa.struct([("key", t.key_type), ("value", t.item_type)]))


def _unmap(column: pa.ChunkedArray) -> pa.ChunkedArray:
    chunks = []
    for arr in column.chunks:
        entries = pa.StructArray.from_arrays([arr.keys, arr.items], names=["key", "value"])
        chunks.append(pa.ListArray.from_arrays(arr.offsets, entries, mask=arr.is_null()))
    return pa.chunked_array(chunks, type=_entries(column.type))


def without_maps(path: Path, dest: Path) -> Path:
    """`datasets` has no map type: map columns (raw `ratings`) become lists of {key, value}.
    Returns `path` itself when there is none; converts one row group at a time."""
    source = pq.ParquetFile(path)
    maps = [f.name for f in source.schema_arrow if pa.types.is_map(f.type)]
    if not maps:
        return path
    writer = None
    for i in range(source.num_row_groups):
        table = source.read_row_group(i)
        for name in maps:
            table = table.set_column(table.schema.get_field_index(name), name, _unmap(table[name]))
        writer = writer or pq.ParquetWriter(dest, table.schema)
        writer.write_table(table)
    if writer is None:  # no rows (refused by the caller): nothing to convert
        return path
    writer.close()
    return dest


class Hub(Protocol):
    """What pushing needs from huggingface_hub (a test passes a recorder instead)."""

    def create_repo(self, repo_id: str, **kw: Any) -> Any: ...

    def upload_file(self, **kw: Any) -> Any: ...


def push_to_hub(
    out_dir: Path,
    repo_id: str,
    token: str | None = None,
    private: bool = True,
    api: Hub | None = None,
    push: Any = None,
) -> None:
    """Upload a directory written by export_to_hf_dir: the README first (so the Hub keeps our
    card and metadata), then the rows as Parquet shards via `Dataset.push_to_hub`, which adds
    its `dataset_info`/`configs` to that README."""
    from datasets import load_from_disk

    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    ds = load_from_disk(str(out_dir))
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_file(
        path_or_fileobj=str(out_dir / "README.md"),
        path_in_repo="README.md",
        repo_id=repo_id,
        repo_type="dataset",
        commit_message="prefloop dataset card",
    )
    (push or ds.push_to_hub)(repo_id, token=token, private=private, split="train")
