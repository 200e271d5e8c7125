"""Server keys that must never be public constants: the session signing key and the key of the
labeler pseudonyms in exports. Unless set in the environment, each is generated on first start
and kept in the data directory (mode 0600), created exclusively so that web processes starting
at once all end up with the same key."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from app.config import Settings, get_settings

SECRET_FILE = "secret_key"
PSEUDONYM_FILE = "pseudonym_key"


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by its owner only; an existing directory this
    process owns loses any group/other access."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid == os.getuid() and st.st_mode & 0o077:
        path.chmod(st.st_mode & 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file that is 0600 from its first byte (never briefly world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def load_or_create(path: Path, initial: Callable[[], str]) -> str:
    """The key stored at `path`; the first caller creates it with `initial()`.

    The key is written to a temporary file opened with O_EXCL and 0600, then linked to `path`:
    the link fails if another process won the race, and then its complete key is read. A reader
    therefore never sees a half-written file."""
    if path.exists():
        return _read(path)
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, initial().encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process created it first: use theirs
    finally:
        tmp.unlink()
    return _read(path)


def _read(path: Path) -> str:
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key (empty or too short); delete it to renew")
    return key


def _random() -> str:
    return secrets.token_urlsafe(48)


def secret_key(settings: Settings | None = None) -> str:
    """The session signing key: PREFLOOP_SECRET_KEY, else DATA_DIR/secret_key."""
    s = settings or get_settings()
    return s.secret_key or load_or_create(s.data_dir / SECRET_FILE, _random)


@lru_cache
def _pseudonym_key(explicit: str, secret: str, data_dir: Path) -> bytes:
    # first start: an explicitly configured secret seeds the file, so labeler pseudonyms in
    # exports stay what they were before the keys were split; from then on the two are
    # independent (rotating the session secret does not change pseudonyms)
    key = explicit or load_or_create(data_dir / PSEUDONYM_FILE, lambda: secret or _random())
    return key.encode()


def pseudonym_key(settings: Settings | None = None) -> bytes:
    """The HMAC key of labeler pseudonyms: PREFLOOP_PSEUDONYM_KEY, else DATA_DIR/pseudonym_key."""
    s = settings or get_settings()
    return _pseudonym_key(s.pseudonym_key, s.secret_key, s.data_dir.resolve())
