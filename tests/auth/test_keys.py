"""Point 1 of issue 11: no public signing key. Keys generated once into the data directory
(0600, created exclusively: concurrent first starts agree), pseudonyms keep their values,
private data directory and database file, and the forged-cookie attack."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from itsdangerous import TimestampSigner

from app.auth import keys
from app.config import Settings
from tests.conftest import IS_PG, LiveServer
from tests.factories import make_user

OLD_PUBLIC_SECRET = "dev-insecure-secret-change-me"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


RACER = """
import sys, time
from pathlib import Path
from app.auth import keys
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
print(keys.load_or_create(Path(sys.argv[1]), keys._random))
"""


def test_concurrent_first_starts_agree_on_one_key(tmp_path):
    """Eight processes create the key at the same moment: one wins, all read its key."""
    path, go = tmp_path / "data" / "secret_key", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(path), str(go)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    time.sleep(1.0)  # let every process reach the wait loop (imports done)
    go.touch()
    got = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(got)) == 1 and len(got[0]) >= 60
    assert path.read_text() == got[0]
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key"]  # no temp files left


def test_settings_refuse_public_or_short_keys():
    for bad in (OLD_PUBLIC_SECRET, "short"):
        with pytest.raises(ValueError, match="PREFLOOP_SECRET_KEY"):
            Settings(secret_key=bad)
        with pytest.raises(ValueError, match="PREFLOOP_SECRET_KEY"):
            Settings(env="production", secret_key=bad)
    with pytest.raises(ValueError, match="PREFLOOP_PSEUDONYM_KEY"):
        Settings(pseudonym_key="x")
    # unset is fine everywhere, production included: a key is generated
    assert Settings(env="production", secret_key="").secret_key == ""


def test_unset_secret_is_generated_once_and_reused(tmp_path):
    s = Settings(data_dir=tmp_path / "d", secret_key="")
    first = keys.secret_key(s)
    assert first == keys.secret_key(s) and first != OLD_PUBLIC_SECRET
    assert _mode(tmp_path / "d" / "secret_key") == 0o600
    assert keys.secret_key(Settings(data_dir=tmp_path / "d", secret_key="y" * 40)) == "y" * 40


def _old_pseudonym(secret: str, uid: int) -> str:
    return (
        "lab_"
        + hmac.new(secret.encode(), f"labeler:{uid}".encode(), hashlib.sha256).hexdigest()[:16]
    )


def test_pseudonyms_stay_stable_across_the_key_split(tmp_path):
    from app.preferences.pseudonym import labeler_pseudonym

    # the test settings have an explicit secret: it seeds the pseudonym key on first use, so
    # exports keep the pseudonyms they had when the secret keyed them
    secret = os.environ["PREFLOOP_SECRET_KEY"]
    assert labeler_pseudonym(7) == _old_pseudonym(secret, 7)
    # from then on the secret can rotate without changing pseudonyms
    d = tmp_path / "d"
    seeded = keys._pseudonym_key("", "a" * 40, d)
    assert keys._pseudonym_key("", "b" * 40, d) == seeded == b"a" * 40
    assert _mode(d / "pseudonym_key") == 0o600
    # no explicit secret: a random pseudonym key of its own, never the session secret
    other = keys._pseudonym_key("", "", tmp_path / "e")
    assert other != keys.secret_key(Settings(data_dir=tmp_path / "e", secret_key="")).encode()


def test_data_dir_database_and_admin_password_are_private(tmp_path):
    from typer.testing import CliRunner

    from app.cli import _discover, root
    from app.config import get_settings
    from app.db import private_sqlite_file
    from app.main import create_app

    create_app()
    assert _mode(get_settings().data_dir) == 0o700
    if not IS_PG:
        db = Path(get_settings().database_url.removeprefix("sqlite:///"))
        assert _mode(db) == 0o600
    loose = tmp_path / "loose.db"
    loose.write_bytes(b"")
    loose.chmod(0o644)
    private_sqlite_file(f"sqlite:///{loose}")
    assert _mode(loose) == 0o600
    fresh = tmp_path / "sub" / "new.db"
    private_sqlite_file(f"sqlite:///{fresh}")
    assert _mode(fresh) == 0o600

    _discover()
    r = CliRunner().invoke(root, ["bootstrap", "--no-demo"])
    assert r.exit_code == 0, r.output
    assert _mode(get_settings().data_dir / "admin-password.txt") == 0o600


def _resign(cookie: str, key: str) -> str:
    """The same session payload, signed with another key (what an attacker can do with a
    known key)."""
    data = cookie.rsplit(".", 2)[0]
    return TimestampSigner(key).sign(data.encode()).decode()


def test_forged_cookie_attack_on_a_server_started_without_secret(tmp_path):
    """As the issue found it: PREFLOOP_ENV and PREFLOOP_SECRET_KEY unset. A cookie signed with
    the once-public development secret gets nothing; the server signs with its generated key."""
    make_user("boss", "admin")
    server = LiveServer(env={"PREFLOOP_DATA_DIR": str(tmp_path / "data")})
    server.env.pop("PREFLOOP_SECRET_KEY")
    server.env.pop("PREFLOOP_ENV")
    server.start()
    try:
        with httpx.Client(base_url=server.url) as c:
            page = c.get("/login")
            csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            r = c.post(
                "/login", data={"name": "boss", "password": "password123", "csrf_token": csrf}
            )
            assert r.status_code == 303
            legit = c.cookies["prefloop_session"]
        session = json.loads(base64.b64decode(legit.rsplit(".", 2)[0] + "=="))
        assert "uid" in session

        key_file = tmp_path / "data" / "secret_key"
        assert _mode(key_file) == 0o600
        generated = key_file.read_text()
        TimestampSigner(generated).unsign(legit)  # the server signs with the generated key

        html = {"accept": "text/html"}
        forged = {"prefloop_session": _resign(legit, OLD_PUBLIC_SECRET)}
        r = httpx.get(server.url + "/admin", cookies=forged, headers=html)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        r = httpx.post(
            server.url + "/api/v1/users",
            json={"name": "mallory", "role": "admin"},
            cookies=forged,
            headers={"x-csrf-token": session.get("csrf", "")},
        )
        assert r.status_code == 401
        # control: the same payload signed with the server's key is accepted
        genuine = {"prefloop_session": _resign(legit, generated)}
        assert httpx.get(server.url + "/admin", cookies=genuine, headers=html).status_code == 200
    finally:
        server.stop()
