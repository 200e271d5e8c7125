"""Create a fresh benchmark database: migrated schema, labelers with API tokens, open tasks."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def recreate_database(url: str) -> None:
    """Drop and create the database named in a PostgreSQL URL."""
    u = make_url(url).set(drivername="postgresql+psycopg")
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{u.database}"'))
    admin.dispose()


def seed(url: str, labelers: int, tasks: int, k: int, required: int) -> list[str]:
    """Migrate, then create labelers (returns their tokens) and `tasks` comparison tasks."""
    os.environ["PREFLOOP_DATABASE_URL"] = url
    from app.db import session_scope
    from app.models import ApiToken, Role, User
    from app.ops.migrate import upgrade
    from app.prompts import parsing, store
    from app.users.service import create_token

    upgrade(url)
    tokens = []
    with session_scope() as session:
        # one password hash for everyone: argon2 per user would dominate seeding time
        session.add_all(
            User(name=f"bench{i:03d}", role=Role.labeler, password_hash="!", active=True)
            for i in range(labelers)
        )
        session.flush()
        for i in range(labelers):
            _, plain = create_token(session, f"bench{i:03d}", "bench")
            tokens.append(plain)
        assert session.query(ApiToken).count() == labelers
    lines = (
        json.dumps(
            {
                "prompt": f"Benchmark prompt {i}: explain topic {i} briefly.",
                "completions": [f"Answer {j} to prompt {i}. " * 8 for j in range(k)],
            }
        )
        for i in range(tasks)
    )
    data = ("\n".join(lines) + "\n").encode()
    records = parsing.parse(data, "comparisons", "jsonl")
    with session_scope() as session:
        store.import_comparisons(session, records, required)
    return tokens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/prefloop_bench")
    p.add_argument("--labelers", type=int, default=64)
    p.add_argument("--tasks", type=int, default=20_000)
    p.add_argument("--k", type=int, default=2, help="candidates per task")
    p.add_argument("--required", type=int, default=3, help="judgments per task")
    p.add_argument("--tokens-out", type=Path, default=Path("bench/labeling/.tokens.json"))
    a = p.parse_args()
    recreate_database(a.url)
    tokens = seed(a.url, a.labelers, a.tasks, a.k, a.required)
    a.tokens_out.write_text(json.dumps(tokens))
    print(f"seeded {a.labelers} labelers, {a.tasks} tasks x {a.required} judgments")


if __name__ == "__main__":
    main()
