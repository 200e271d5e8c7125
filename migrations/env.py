"""Alembic environment: one chain for SQLite and PostgreSQL (batch mode for SQLite ALTERs)."""

from alembic import context

from app.db import make_sync_engine
from app.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url") or None


def run_migrations_online() -> None:
    engine = make_sync_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
