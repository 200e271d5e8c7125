"""`prefloop export preferences`: files, cards, snapshots; batching across cursor pages."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import _discover, root
from app.db import session_scope
from app.exports import query, writers
from app.models import DatasetSnapshot
from tests.exports.helpers import candidates, judge
from tests.factories import make_tasks, make_user

_discover()
runner = CliRunner()


@pytest.fixture
def judged() -> list[int]:
    make_user("alice")
    make_user("bob")
    tasks = make_tasks(30, k=3)
    for i, tid in enumerate(tasks):
        a, b, c = candidates(tid)
        judge(tid, "alice", [[a], [b], [c]])
        if i % 2:
            judge(tid, "bob", [[b], [a, c]])
    return tasks


def test_cli_writes_file_card_and_snapshot(tmp_path: Path, judged: list[int]) -> None:
    make_user("rita", "researcher")
    out = tmp_path / "prefs.parquet"
    args = ["export", "preferences", "-o", str(out), "--shape", "raw", "--format", "parquet"]
    r = runner.invoke(root, [*args, "--user", "rita", "--labeler", "bob"])
    assert r.exit_code == 0, r.output
    assert pq.read_table(out).num_rows == 15
    card = (tmp_path / "prefs.parquet.card.md").read_text()
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest in card and "rita" in card and "labelers" in card
    with session_scope() as session:
        snap = session.scalars(select(DatasetSnapshot)).one()
        assert (snap.sha256, snap.row_count, snap.shape, snap.format) == (
            digest,
            15,
            "raw",
            "parquet",
        )
        assert snap.filters["labelers"] == ["bob"] and snap.card.rstrip() == card.rstrip()
    assert not list(tmp_path.glob(".*.part"))


def test_cli_rejects_bad_input(tmp_path: Path) -> None:
    make_user("lara")
    out = tmp_path / "x.jsonl"
    base = ["export", "preferences", "-o", str(out)]
    assert runner.invoke(root, [*base, "--shape", "pairs"]).exit_code == 1
    assert runner.invoke(root, [*base, "--labeler", "ghost"]).exit_code == 1
    r = runner.invoke(root, [*base, "--user", "lara"])
    assert r.exit_code == 1 and "not a researcher" in r.output
    assert not out.exists()


def test_streaming_across_cursor_pages_and_row_groups(
    tmp_path: Path, judged: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(query, "BATCH", 7)
    monkeypatch.setattr(writers, "ROW_GROUP", 4)
    monkeypatch.setattr(writers, "CHUNK_BYTES", 100)
    out = tmp_path / "trl.jsonl"
    assert runner.invoke(root, ["export", "preferences", "-o", str(out)]).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # 15 tasks judged once (3 pairs each); 15 twice: a-b split, a-c win vs tie, b-c agreed
    assert len(rows) == 15 * 3 + 15 * 1
    assert sorted({r["task_id"] for r in rows}) == sorted(judged)
    pq_out = tmp_path / "rank.parquet"
    r = runner.invoke(root, ["export", "preferences", "-o", str(pq_out), "--shape", "rankings",
                             "--format", "parquet"])  # fmt: skip
    assert r.exit_code == 0
    meta = pq.ParquetFile(pq_out).metadata
    assert meta.num_rows == 30 and meta.num_row_groups == 8
