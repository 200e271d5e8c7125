"""/admin/labelers and /admin/labelers/{id} on a seeded crowd (tests/quality/crowd_seed.py):
server time per view, repeated views and the first view after a new judgment.

    python bench/labelers_page.py                      # SQLite in a temporary folder
    python bench/labelers_page.py --pairs 8000 --good 140 --database-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=4000)
    ap.add_argument("--good", type=int, default=70, help="good labelers (bad ones scale along)")
    ap.add_argument("--views", type=int, default=10)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="prefloop-bench-") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> None:
    os.environ.update(
        PREFLOOP_DATABASE_URL=args.database_url or f"sqlite:///{tmp / 'bench.db'}",
        PREFLOOP_DATA_DIR=str(tmp / "data"),
        PREFLOOP_ENV="test",
        PREFLOOP_SECRET_KEY="bench-secret-key-not-for-production",
    )
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from app.db import session_scope
    from app.main import create_app
    from app.models import Judgment, User
    from app.ops.migrate import upgrade
    from tests.factories import auth, make_user
    from tests.quality.crowd_seed import seed_crowd

    upgrade(os.environ["PREFLOOP_DATABASE_URL"])
    scale = args.good / 14
    kinds = {"good": args.good, "random": round(3 * scale), "always_a": round(2 * scale),
             "fast_random": max(1, round(scale))}  # fmt: skip
    started = time.perf_counter()
    seed_crowd(args.pairs, 0, kinds=kinds)
    h = auth(make_user("bench-admin", "admin"))
    with session_scope() as s:
        n = len(s.scalars(select(Judgment.id)).all())
        some = s.scalars(select(User.id).where(User.role == "labeler")).first()
        task, ranking = s.execute(select(Judgment.task_id, Judgment.ranking).limit(1)).one()
    print(f"{sum(kinds.values())} labelers, {n} judgments (seeded in "
          f"{time.perf_counter() - started:.0f}s)")  # fmt: skip

    def view(client: TestClient, url: str) -> float:
        t = time.perf_counter()
        assert client.get(url, headers=h).status_code == 200
        return (time.perf_counter() - t) * 1000

    with TestClient(create_app()) as client:
        for url in ("/admin/labelers", f"/admin/labelers/{some}"):
            first = view(client, url)
            again = [view(client, url) for _ in range(args.views)]
            with session_scope() as s:  # a new (imported) judgment: the next view recomputes
                s.add(Judgment(task_id=task, source="bench", external_id=url, ranking=ranking))
            fresh = view(client, url)
            print(f"{url}: first {first:.0f} ms, repeated median {statistics.median(again):.1f} "
                  f"ms (min {min(again):.1f}), after a new judgment {fresh:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
