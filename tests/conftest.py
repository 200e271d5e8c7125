"""Test fixtures: a real database (SQLite file, or a throwaway PostgreSQL database when
PREFLOOP_TEST_DATABASE_URL names a server), migrated once, wiped between tests; a real
chromium driven by playwright (skipped with a reason where absent, unless
PREFLOOP_REQUIRE_BROWSER=1)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
_TMP = Path(tempfile.mkdtemp(prefix="prefloop-test-"))
_PG = os.environ.get("PREFLOOP_TEST_DATABASE_URL", "")


def _setup_database() -> str:
    if not _PG:
        return f"sqlite:///{_TMP / 'test.db'}"
    url = make_url(_PG).set(drivername="postgresql+psycopg")
    name = f"prefloop_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


DATABASE_URL = _setup_database()
os.environ.update(
    PREFLOOP_DATABASE_URL=DATABASE_URL,
    PREFLOOP_DATA_DIR=str(_TMP / "data"),
    PREFLOOP_ENV="test",
    PREFLOOP_SECRET_KEY="test-secret-key-not-for-production",
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    TOKENIZERS_PARALLELISM="false",
    TRL_EXPERIMENTAL_SILENCE="1",
)

IS_PG = DATABASE_URL.startswith("postgresql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """tests/ml never touch the database: marked `dbless` so CI runs them in one backend pass."""
    for item in items:
        if "/tests/ml/" in str(item.path):
            item.add_marker(pytest.mark.dbless)


def pytest_sessionstart(session: pytest.Session) -> None:
    from app.ops.migrate import upgrade

    upgrade(DATABASE_URL)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if IS_PG:
        from app.db import sync_engine

        sync_engine().dispose()
        url = make_url(DATABASE_URL)
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        admin.dispose()


def wipe_database() -> None:
    from app.db import sync_engine
    from app.models import Base

    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with sync_engine().begin() as conn:
        if IS_PG:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            # audit_log is append-only (triggers): lift the guard for the wipe only
            from app.audit import guard

            for statement in guard.statements("sqlite", create=False):
                conn.execute(text(statement))
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
            for statement in guard.statements("sqlite", create=True):
                conn.execute(text(statement))


@pytest.fixture(autouse=True)
def _clean_db() -> Iterator[None]:
    from app.auth.deps import auth_cache

    auth_cache.clear()
    yield
    wipe_database()
    auth_cache.clear()


@pytest.fixture
def client() -> Iterator:
    """In-process FastAPI TestClient against the real database."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app()) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn in a subprocess, as in production; restartable (for crash tests)."""

    def __init__(self, workers: int = 1, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = _TMP / f"server-{self.port}.log"

    def start(self, timeout: float = 30) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError("server did not start in time")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def live_server() -> Iterator[LiveServer]:
    server = LiveServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 policy + tokenizer saved in save_pretrained layout (offline, seconds)."""
    from ml.tiny import build_tiny_policy

    return build_tiny_policy(tmp_path_factory.mktemp("tiny") / "policy")


CHROMIUM = Path(os.environ.get("PREFLOOP_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is not installed (pip install playwright)"
    if not CHROMIUM.exists():
        return f"chromium not found at {CHROMIUM} (apt-get install chromium)"
    return None


class _Shared:
    """One playwright driver and one chromium at a time, per test module.

    Module scope, not session: a running sync playwright keeps an event loop running in the main
    thread, which breaks later tests that call asyncio.run(). Other packages import the fixture;
    should two instances ever overlap they share this one, and the last to finish closes it.
    """

    users = 0
    playwright: Any = None
    browser: Any = None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason:
        if os.environ.get("PREFLOOP_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (PREFLOOP_REQUIRE_BROWSER=1) but {reason}")
        pytest.skip(f"browser tests skipped: {reason}")
    from playwright.sync_api import sync_playwright

    if _Shared.users == 0:
        _Shared.playwright = sync_playwright().start()
        _Shared.browser = _Shared.playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True
        )
    _Shared.users += 1
    try:
        yield _Shared.browser
    finally:
        _Shared.users -= 1
        if _Shared.users == 0:
            _Shared.browser.close()
            _Shared.playwright.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context at 1280 px; any JS dialog (alert, confirm) is recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    # the "nothing to do" screen re-checks every 15 s in production; faster here
    context.add_init_script("window.PREFLOOP_POLL_MS = 500;")
    # every Content-Security-Policy violation of any page is recorded: a test fails on one
    context.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', e =>"
        " window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));"
    )
    pg = context.new_page()
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    violations: list[str] = []
    pg.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    yield pg
    context.close()
    assert not violations, f"Content-Security-Policy violations: {violations}"
