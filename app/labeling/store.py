"""Where the hot path's statements run: PostgreSQL (psycopg pool, one statement per request) or
SQLite (one thread per process, BEGIN IMMEDIATE). No ORM, no SQLAlchemy on this path.

Both backends return the same plain shapes, so app.labeling.hot builds the responses once:
- Offer: (task_id, lease_expires_at ISO text, required_judgments, tags JSON text,
  prompt JSON text, candidate ids in the order shown, candidate texts in that order)
- Stored judgment: (id, task_id, ranking JSON, choice, ratings JSON, flags JSON, rationale,
  time_spent_ms, shown_order JSON, created_at ISO text)
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson

from app.labeling import sql

Offer = tuple[int, str, int, str, str, list[int], list[str]]
Stored = tuple[int, int, str, str | None, str, str, str | None, int | None, str, str]
T = TypeVar("T")

_rng = random.SystemRandom()


class Unavailable(Exception):
    """The database did not answer in time (pool exhausted, statement timeout, lock wait)."""


@dataclass(slots=True)
class NextResult:
    auth_ok: bool
    offer: Offer | None
    busy: bool  # nothing offered although an eligible task exists (locked or just changed)


@dataclass(slots=True)
class SubmitResult:
    verdict: str  # one of sql.VERDICTS
    judgment: Stored | None  # the stored judgment (verdicts ok and exists)
    shown_order: str | None  # the caller's assignment's order (for error messages)
    required: int | None
    next: NextResult | None  # with want_next


@dataclass(slots=True)
class SubmitParams:
    task_id: int
    choice: str | None
    positions: str | None  # JSON: the choice as positions in the order shown
    ranking: str | None  # JSON
    flat: list[int] | None  # the ranking's candidate ids, sorted
    ratings: str
    flags: str
    rationale: str | None
    time_spent_ms: int | None


class PgStore:
    """A psycopg connection pool in autocommit mode: one statement is one transaction."""

    def __init__(self, conninfo: str, max_size: int, timeout_s: float, statement_timeout_ms: int):
        from psycopg import AsyncRawCursor
        from psycopg_pool import AsyncConnectionPool

        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            timeout=timeout_s,
            open=False,
            name="prefloop-labeling",
            kwargs={
                "autocommit": True,
                "cursor_factory": AsyncRawCursor,  # $n placeholders: no per-call query parsing
                "prepare_threshold": 1,  # the same few statements, prepared on second use
                "options": f"-c statement_timeout={statement_timeout_ms}",
                "application_name": "prefloop-labeling",
            },
        )
        self._opened = False

    async def open(self) -> None:
        if not self._opened:
            self._opened = True
            await self.pool.open(wait=False)

    async def close(self) -> None:
        if self._opened:
            self._opened = False
            await self.pool.close()

    async def _one(self, name: str, params: dict[str, Any]) -> tuple[Any, ...]:
        import psycopg
        from psycopg_pool import PoolTimeout

        await self.open()
        try:
            statement, names = sql.PG[name]
            async with self.pool.connection() as conn:
                cur = conn.cursor()
                await cur.execute(statement, [params[n] for n in names])
                row = await cur.fetchone()
        except (PoolTimeout, psycopg.errors.QueryCanceled, psycopg.OperationalError) as e:
            raise Unavailable(str(e).splitlines()[0] if str(e) else type(e).__name__) from e
        assert row is not None
        return row

    async def next(self, uid: int, av: int, now: datetime, expires: datetime) -> NextResult:
        row = await self._one("next", {"uid": uid, "av": av, "now": now, "expires": expires})
        return NextResult(bool(row[0]), row[1:8] if row[1] is not None else None, bool(row[8]))

    async def submit(
        self,
        uid: int,
        av: int,
        p: SubmitParams,
        now: datetime,
        expires: datetime,
        want_next: bool,
    ) -> SubmitResult:
        params = {
            "uid": uid,
            "av": av,
            "tid": p.task_id,
            "now": now,
            "expires": expires,
            "choice": p.choice,
            "positions": p.positions,
            "ranking": p.ranking,
            "flat": p.flat,
            "ratings": p.ratings,
            "flags": p.flags,
            "rationale": p.rationale,
            "spent": p.time_spent_ms,
        }
        row = await self._one("submit_next" if want_next else "submit", params)
        judgment = row[3:13] if row[3] is not None else None
        nxt = None
        if want_next:
            nxt = NextResult(True, row[13:20] if row[13] is not None else None, bool(row[20]))
        return SubmitResult(row[0], judgment, row[1], row[2], nxt)


def _sqlite_time(t: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite (naive text, microseconds)."""
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


def _iso(stored: str) -> str:
    return stored.replace(" ", "T") + "Z"


class SqliteStore:
    """The embedded backend: one connection in one thread per process, BEGIN IMMEDIATE."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="prefloop-labeling")
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, _close)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON",
                           "synchronous=NORMAL"):  # fmt: skip
                conn.execute(f"PRAGMA {pragma}")
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, fn, args)

    def _transaction(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:  # still locked after busy_timeout
            raise Unavailable(str(e)) from e
        try:
            result = fn(conn, *args)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    async def next(self, uid: int, av: int, now: datetime, expires: datetime) -> NextResult:
        return await self._run(_sqlite_next, uid, av, now, expires, None, True)

    async def submit(
        self,
        uid: int,
        av: int,
        p: SubmitParams,
        now: datetime,
        expires: datetime,
        want_next: bool,
    ) -> SubmitResult:
        return await self._run(_sqlite_submit, uid, av, p, now, expires, want_next)


def _sqlite_next(
    conn: sqlite3.Connection,
    uid: int,
    av: int,
    now: datetime,
    expires: datetime,
    exclude: int | None,
    check_auth: bool,
) -> NextResult:
    params = {"uid": uid, "av": av, "now": _sqlite_time(now), "tid": exclude}
    if check_auth and conn.execute(sql.SQLITE_AUTH, params).fetchone() is None:
        return NextResult(False, None, False)
    held = conn.execute(sql.SQLITE_HELD, params).fetchone()
    if held is not None:
        task_id, order_json, expires_at = held
        order = orjson.loads(order_json)
    else:
        pick = conn.execute(sql.SQLITE_PICK, params).fetchone()
        if pick is None:
            return NextResult(True, None, False)
        task_id = pick[0]
        order = [r[0] for r in conn.execute(sql.SQLITE_CANDIDATES, {"task": task_id})]
        _rng.shuffle(order)
        expires_at = _sqlite_time(expires)
        conn.execute(
            sql.SQLITE_LEASE,
            {"task": task_id, "uid": uid, "order": orjson.dumps(order).decode(),
             "now": params["now"], "expires": expires_at},
        )  # fmt: skip
    required, tags, prompt = conn.execute(sql.SQLITE_OFFER, {"task": task_id}).fetchone()
    texts = dict(conn.execute(sql.SQLITE_TEXTS, {"task": task_id}).fetchall())
    offer = (task_id, _iso(expires_at), required, tags or "[]", prompt, order,
             [texts[i] for i in order])  # fmt: skip
    return NextResult(True, offer, False)


def _sqlite_submit(
    conn: sqlite3.Connection,
    uid: int,
    av: int,
    p: SubmitParams,
    now: datetime,
    expires: datetime,
    want_next: bool,
) -> SubmitResult:
    params = {"uid": uid, "av": av, "tid": p.task_id}
    if conn.execute(sql.SQLITE_AUTH, params).fetchone() is None:
        return SubmitResult("auth", None, None, None, None)
    task = conn.execute(sql.SQLITE_TASK, params).fetchone()
    if task is None:
        return SubmitResult("not_found", None, None, None, None)
    required, count = task
    verdict, stored, order_json = "ok", None, None
    prev = conn.execute(sql.SQLITE_PREV, params).fetchone()
    asg = conn.execute(sql.SQLITE_ASG, params).fetchone()
    if asg is not None:
        order_json = asg[0]
    if prev is not None:
        verdict, stored = "exists", _sqlite_stored(prev)
    elif asg is None:
        verdict = "not_assigned"
    elif asg[1] == "skipped":
        verdict = "skipped"
    else:
        order = orjson.loads(asg[0])
        if p.positions is not None and len(order) != 2:
            verdict = "choice_k"
        elif p.positions is None and p.flat != sorted(order):
            verdict = "bad_ranking"
        elif count >= required:
            verdict = "full"
        else:
            ranking: str | None
            if p.positions is not None:
                ranking = orjson.dumps(
                    [[order[i] for i in grp] for grp in orjson.loads(p.positions)]
                ).decode()
            else:
                ranking = p.ranking
            row = conn.execute(
                sql.SQLITE_INSERT,
                {**params, "ranking": ranking, "choice": p.choice, "ratings": p.ratings,
                 "flags": p.flags, "rationale": p.rationale, "spent": p.time_spent_ms,
                 "order": order_json, "now": _sqlite_time(now)},
            ).fetchone()  # fmt: skip
            stored = _sqlite_stored(row)
            conn.execute(sql.SQLITE_COUNT, params)
            conn.execute(sql.SQLITE_CLOSE, params)
    nxt = None
    if want_next and verdict in sql.MOVE_ON:
        nxt = _sqlite_next(conn, uid, av, now, expires, p.task_id, False)
    elif want_next:
        nxt = NextResult(True, None, False)
    return SubmitResult(verdict, stored, order_json, required, nxt)


def _sqlite_stored(row: tuple[Any, ...]) -> Stored:
    jid, tid, ranking, choice, ratings, flags, rationale, spent, order, created = row
    return (jid, tid, ranking, choice, ratings, flags, rationale, spent, order, _iso(created))


Store = PgStore | SqliteStore
