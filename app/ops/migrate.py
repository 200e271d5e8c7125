"""Apply and inspect Alembic migrations from code (CLI, readiness probe, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from app.config import get_settings
from app.db import sync_url

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", sync_url(url or get_settings().database_url))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    settings = get_settings()
    if (url or settings.database_url).startswith("sqlite"):
        from app.auth.keys import private_dir

        private_dir(settings.data_dir)
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()
