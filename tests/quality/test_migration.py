"""Migration 0006 (labeler quality) on SQLite, whatever the test backend: upgrading warns
nothing and copies no table (the `excluded` default is a constant), and downgrading keeps the
expression index ix_comparison_tasks_queue, which SQLite reflection cannot see."""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path

from alembic import command

from app.ops.migrate import alembic_config


def _schema(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as c:
        return {n: s for n, s in c.execute("SELECT name, sql FROM sqlite_master WHERE sql != ''")}


def test_0006_up_and_down_on_sqlite_warn_nothing_and_keep_the_queue_index(tmp_path: Path):
    db = tmp_path / "m.db"
    cfg = alembic_config(f"sqlite:///{db}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the SAWarning about ix_comparison_tasks_queue included
        command.upgrade(cfg, "0007")
        before = _schema(db)
        command.upgrade(cfg, "0006")
        head = _schema(db)
        # no copy-and-move: judgments keeps its original CREATE TABLE, plus the new column
        assert head["judgments"].startswith("CREATE TABLE judgments")
        assert "excluded BOOLEAN DEFAULT '0' NOT NULL" in head["judgments"]
        command.downgrade(cfg, "0007")
        assert _schema(db).keys() == before.keys()
        assert "WHERE status = 'open'" in _schema(db)["ix_comparison_tasks_queue"]
        command.upgrade(cfg, "head")
    assert _schema(db).keys() == head.keys()
    with sqlite3.connect(db) as c:  # the constant default is stored as the integer 0 (false)
        c.execute("INSERT INTO judgments (task_id, ranking, ratings, flags, created_at) "
                  "VALUES (1, '[]', '{}', '[]', '2026-01-01')")  # fmt: skip
        row = c.execute("SELECT excluded, typeof(excluded) FROM judgments").fetchone()
    assert row == (0, "integer")
