"""Engines and sessions: async for the web process, sync for the CLI, worker and migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings, get_settings


def is_postgres(bind: Session | AsyncSession | Connection | Engine) -> bool:
    """Whether a session, connection or engine talks to PostgreSQL (else SQLite): the one
    dialect check, for the few statements that differ between the two."""
    if isinstance(bind, Session | AsyncSession):
        return bind.get_bind().dialect.name == "postgresql"
    return bind.dialect.name == "postgresql"


def sync_url(url: str) -> str:
    """The URL the sync engine uses (sqlite:/// or postgresql+psycopg://)."""
    u = make_url(url)
    if u.drivername.startswith("sqlite"):
        return str(u.set(drivername="sqlite"))
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def async_url(url: str) -> str:
    u = make_url(sync_url(url))
    if u.drivername == "sqlite":
        return str(u.set(drivername="sqlite+aiosqlite"))
    return u.render_as_string(hide_password=False)


def _pragmas(dbapi_conn: Any) -> None:
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_setup(engine: Engine) -> None:
    """Serialize writers with BEGIN IMMEDIATE, WAL for concurrent readers, wait on locks."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        _pragmas(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def private_sqlite_file(url: str) -> None:
    """Create the SQLite database file readable by its owner only (SQLite gives its -wal and
    -shm files the same mode); an existing file loses group/other access."""
    import os
    from pathlib import Path

    name = make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    # never open an existing database file here: closing any descriptor of it drops every POSIX
    # lock this process's SQLite connections hold on it
    if not path.exists():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    st = path.stat()
    if st.st_uid == os.getuid() and st.st_mode & 0o077:
        path.chmod(st.st_mode & 0o600)


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


def _is_write(statement: str, context: Any) -> bool:
    """Does this statement need SQLite's writer lock? DML, DDL, and a SELECT ... FOR UPDATE
    (which SQLite cannot express: the lock PostgreSQL takes on the rows is the writer lock)."""
    compiled = getattr(context, "compiled", None)
    if compiled is not None and getattr(compiled.statement, "_for_update_arg", None) is not None:
        return True
    head = statement.lstrip()[:8].upper()
    if head.startswith(_WRITES):
        return True
    return head.startswith("WITH") and any(w in statement.upper() for w in _WRITES[:3])


def _sqlite_deferred_reads(engine: Engine) -> None:
    """The web process's SQLite transactions: one that only reads begins DEFERRED (it holds
    no lock, so a request can read, then wait for an upload or a model, blocking nobody); the
    first write of a transaction makes it BEGIN IMMEDIATE. A transaction that read first is
    restarted at that write (nothing was written yet): reads before and the writes after are
    then as isolated as PostgreSQL's READ COMMITTED, which the code is written for anyway."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        _pragmas(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.info["sqlite_txn"] = "pending"  # BEGIN is sent with the first statement

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        state = conn.info.get("sqlite_txn")
        if state is None or state == "immediate":
            return
        write = _is_write(statement, context)
        if state == "pending":
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            conn.info["sqlite_txn"] = "immediate" if write else "deferred"
        elif write:  # deferred, and the first write comes
            cursor.execute("ROLLBACK")
            cursor.execute("BEGIN IMMEDIATE")
            conn.info["sqlite_txn"] = "immediate"

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _end(conn):
        conn.info["sqlite_txn"] = None


def make_sync_engine(url: str | None = None) -> Engine:
    url = sync_url(url or get_settings().database_url)
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_engine(url, connect_args={"timeout": 30})
        _sqlite_setup(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5)


def make_async_engine(url: str | None = None) -> AsyncEngine:
    url = async_url(url or get_settings().database_url)
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _sqlite_deferred_reads(engine.sync_engine)
        return engine
    settings = get_settings()
    pools = web_pools(settings)
    return create_async_engine(
        url,
        pool_size=pools.general,
        max_overflow=0,
        pool_timeout=settings.pool_timeout_s,
        pool_pre_ping=False,
        connect_args=_timeout_args(settings.statement_timeout_ms),
    )


@lru_cache
def sync_engine() -> Engine:
    return make_sync_engine()


@lru_cache
def sync_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(sync_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """One unit of work for the CLI and worker: commits on success, rolls back on error."""
    session = sync_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def make_async_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def session_from(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """The request's session: the one commit point of the web process."""
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# --- connection budget of the web server ------------------------------------------------------


@dataclass(frozen=True)
class WebPools:
    """PostgreSQL connections ONE web worker process may hold."""

    general: int  # SQLAlchemy pool: pages, admin, exports, auth lookups on a cache miss
    labeling: int  # psycopg pool of the labeling hot path (one short statement per request)


def web_pools(settings: Settings) -> WebPools:
    """Split DB_MAX_CONNECTIONS over `serve --workers N` processes.

    The hot path holds a connection for one statement (about a millisecond), so a few per
    process keep PostgreSQL's cores busy; more only queue inside PostgreSQL. The rest goes to the
    general pool, whose connections can be held for a whole request (an export streams for
    minutes). Every process gets at least 2 + 2.
    """
    share = max(4, settings.db_max_connections // settings.web_workers)
    labeling = min(8, max(2, share // 4))
    return WebPools(general=share - labeling, labeling=labeling)


@dataclass(frozen=True)
class LabelingPool:
    conninfo: str
    max_size: int
    timeout_s: float
    statement_timeout_ms: int


def labeling_pool(settings: Settings) -> LabelingPool:
    """libpq connection string and limits of the labeling hot path's psycopg pool."""
    u = make_url(sync_url(settings.database_url)).set(drivername="postgresql")
    return LabelingPool(
        conninfo=u.render_as_string(hide_password=False),
        max_size=web_pools(settings).labeling,
        timeout_s=settings.pool_timeout_s,
        statement_timeout_ms=settings.labeling_statement_timeout_ms,
    )


def _timeout_args(statement_timeout_ms: int) -> dict[str, str]:
    """libpq options so a stuck query cannot hold a web worker's connection forever."""
    return {"options": f"-c statement_timeout={statement_timeout_ms}"}
