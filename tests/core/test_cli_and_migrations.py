"""CLI account commands and the migration chain."""

from __future__ import annotations

import hashlib

from alembic import command
from sqlalchemy import select
from typer.testing import CliRunner

from app.auth.security import verify_password
from app.cli import _discover, root
from app.db import session_scope
from app.models import ApiToken, User
from app.ops.migrate import alembic_config

_discover()
runner = CliRunner()


def test_users_create_prints_generated_password_and_tokens_are_hashed():
    r = runner.invoke(root, ["users", "create", "dana", "--role", "admin"])
    assert r.exit_code == 0, r.output
    password = r.output.split("password: ")[1].strip()
    with session_scope() as s:
        user = s.scalar(select(User).where(User.name == "dana"))
        assert user.role == "admin" and verify_password(user.password_hash, password)
        assert password not in user.password_hash
    r = runner.invoke(root, ["users", "create", "eve", "--password", "correct-horse"])
    assert r.exit_code == 0 and "password:" not in r.output
    r = runner.invoke(root, ["users", "create", "eve"])
    assert r.exit_code == 1 and "already exists" in r.output
    r = runner.invoke(root, ["tokens", "create", "dana"])
    plain = r.output.strip()
    assert r.exit_code == 0 and plain.startswith("pfl_")
    with session_scope() as s:
        stored = s.scalar(select(ApiToken.token_hash))
    assert stored == hashlib.sha256(plain.encode()).hexdigest() and plain not in stored
    assert runner.invoke(root, ["tokens", "create", "nobody"]).exit_code == 1


def test_bootstrap_creates_admin_once_and_demo_is_idempotent():
    first = runner.invoke(root, ["bootstrap"])
    assert first.exit_code == 0 and "admin account created" in first.output
    assert "10 new comparison tasks" in first.output
    again = runner.invoke(root, ["bootstrap"])
    assert again.exit_code == 0 and "admin account created" not in again.output
    assert "0 new comparison tasks" in again.output


def test_alembic_check_is_clean():
    command.check(alembic_config())  # raises if models and migrations disagree
