"""Point 6 of issue 11: no request holds SQLite's writer lock across I/O or model work. Reads
begin DEFERRED, writes BEGIN IMMEDIATE; authentication ends its transaction before the route
reads an upload."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select, text

from app.db import make_async_engine, make_async_sessionmaker, session_scope
from app.exports.query import read_connection
from app.models import ApiToken, Prompt, User
from tests.conftest import DATABASE_URL, IS_PG, LiveServer
from tests.factories import auth, comparison_lines, make_tasks, make_user

sqlite_only = pytest.mark.skipif(IS_PG, reason="SQLite's database-wide writer lock")


def _writer_lock_free() -> bool:
    """Can another connection take the writer lock right now (without waiting)?"""
    probe = sqlite3.connect(DATABASE_URL.removeprefix("sqlite:///"), timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as e:
        assert "locked" in str(e)
        return False
    finally:
        probe.close()


@sqlite_only
def test_reads_take_no_lock_and_the_first_write_takes_it():
    make_user("alice")

    async def scenario() -> list[bool]:
        engine = make_async_engine()
        seen = []
        try:
            async with make_async_sessionmaker(engine)() as session:
                await session.scalar(select(User.id))
                seen.append(_writer_lock_free())  # a read: no lock held
                session.add(Prompt(content_hash="h" * 64, messages=[], is_chat=False, tags=[]))
                await session.flush()
                seen.append(_writer_lock_free())  # the write took the writer lock
                await session.commit()
                seen.append(_writer_lock_free())
                # a FOR UPDATE read is a write intent: SQLite's only lock is the writer lock
                await session.execute(select(User.id).with_for_update())
                seen.append(_writer_lock_free())
                await session.rollback()
        finally:
            await engine.dispose()
        return seen

    assert asyncio.run(scenario()) == [True, False, True, False]
    with session_scope() as s:
        assert s.scalar(select(Prompt.id)) is not None


def _slow_body(release: threading.Event) -> Iterator[bytes]:
    lines = comparison_lines(3, prefix="slow").splitlines(keepends=True)
    yield lines[0]
    release.wait(30)  # the upload stalls here until the labeler got a task
    yield from lines[1:]


def test_labeler_gets_a_task_while_an_upload_is_still_arriving():
    """The issue's case: a long import upload (auth done, body still arriving) while a labeler
    asks for the next task. Before, auth's write transaction held SQLite's lock across the upload
    and the labeler waited 30 s for a 500."""
    admin = make_user("boss", "admin")
    labeler = make_user("lab")
    make_tasks(2)
    server = LiveServer()
    server.start()
    release = threading.Event()
    result: dict[str, httpx.Response] = {}

    def upload() -> None:
        result["upload"] = httpx.post(
            server.url + "/api/v1/import/comparisons",
            content=_slow_body(release),
            headers={**auth(admin), "content-type": "application/x-ndjson"},
            timeout=60,
        )

    uploader = threading.Thread(target=upload)
    try:
        uploader.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the admin's request got past authentication
            with read_connection() as conn:  # a plain reader: it must not wait for a lock
                used = conn.scalar(
                    select(ApiToken.last_used_at)
                    .join(User, User.id == ApiToken.user_id)
                    .where(User.name == "boss")
                )
            if used is not None:
                break
            time.sleep(0.05)
        if not IS_PG:
            assert _writer_lock_free()
        r = httpx.get(server.url + "/api/v1/tasks/next", headers=auth(labeler), timeout=10)
        assert r.status_code == 200, r.text
        assert uploader.is_alive()  # the upload is indeed still arriving
    finally:
        release.set()
        uploader.join(60)
        server.stop()
    assert result["upload"].status_code == 201, result["upload"].text
    with session_scope() as s:
        assert s.scalar(text("SELECT count(*) FROM comparison_tasks")) == 5
