"""Export streaming benchmark: prefloop exports vs `COPY ... TO STDOUT` of the same rows.

Generates N judgments with bulk SQL (3 labelers per K=2 task) in a throwaway database, then
runs each export in a fresh subprocess and reports wall time, rows/s, output size, and RSS
(after imports, and peak) so growth with N is visible.

    python bench/export_stream.py --sizes 100000 1000000
    python bench/export_stream.py --url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LABELERS = 30
PER_TASK = 3

GENERATE = [
    "INSERT INTO users (name, role, password_hash, active, created_at) "
    "SELECT 'bench' || i, 'labeler', 'x', true, now() FROM generate_series(1, {labelers}) i",
    "INSERT INTO prompts (content_hash, messages, is_chat, tags, needs_candidates, created_at) "
    "SELECT md5('p' || i), jsonb_build_array(jsonb_build_object('role', 'user', 'content', "
    "'Benchmark prompt number ' || i || ': explain something in two sentences.')), "
    "i % 2 = 0, '[]'::jsonb, false, now() FROM generate_series(1, {tasks}) i",
    "INSERT INTO completions (prompt_id, content_hash, text, source, created_at) "
    "SELECT p.id, md5(p.id || '-' || c), 'Candidate ' || c || ' for prompt ' || p.id || "
    "'. It answers in a couple of sentences with some detail.', 'bench', now() "
    "FROM prompts p CROSS JOIN generate_series(0, 1) c",
    "INSERT INTO comparison_tasks (prompt_id, dedupe_key, required_judgments, judgment_count, "
    "status, tags, created_at) SELECT id, md5('t' || id), {per_task}, {per_task}, 'complete', "
    "'[]'::jsonb, now() FROM prompts",
    "INSERT INTO task_candidates (task_id, position, completion_id) "
    "SELECT t.id, row_number() OVER (PARTITION BY t.id ORDER BY c.id) - 1, c.id "
    "FROM comparison_tasks t JOIN completions c ON c.prompt_id = t.prompt_id",
    # judgment j of task t: labeler (t + j) mod L; preference direction pseudo-random
    "INSERT INTO judgments (task_id, user_id, ranking, choice, ratings, flags, time_spent_ms, "
    "shown_order, created_at) "
    "SELECT t.id, u.min_id + (t.id + j) % {labelers}, "
    "CASE WHEN (t.id * 7 + j * 3) % 5 < 3 THEN jsonb_build_array(jsonb_build_array(c.a), "
    "jsonb_build_array(c.b)) WHEN (t.id * 7 + j * 3) % 5 = 3 THEN jsonb_build_array("
    "jsonb_build_array(c.b), jsonb_build_array(c.a)) ELSE jsonb_build_array("
    "jsonb_build_array(c.a, c.b)) END, "
    "CASE WHEN (t.id * 7 + j * 3) % 5 < 3 THEN 'a' WHEN (t.id * 7 + j * 3) % 5 = 3 THEN 'b' "
    "ELSE 'tie' END, '{{\"helpfulness\": 4}}'::jsonb, '[]'::jsonb, 1000 + j, "
    "jsonb_build_array(c.a, c.b), now() "
    "FROM comparison_tasks t "
    "JOIN (SELECT task_id, min(completion_id) a, max(completion_id) b FROM task_candidates "
    "GROUP BY task_id) c ON c.task_id = t.id "
    "CROSS JOIN generate_series(0, {per_task} - 1) j "
    "CROSS JOIN (SELECT min(id) min_id FROM users) u",
    "ANALYZE",
]

# the same rows as the raw shape: judgment fields, prompt messages, candidates with sources
COPY_SQL = """COPY (
  SELECT j.id, j.task_id, j.user_id, j.source, j.external_id, p.messages, p.is_chat, t.tags,
    (SELECT json_agg(json_build_object('id', c.id, 'text', c.text, 'source', c.source,
       'model_version_id', c.model_version_id) ORDER BY tc.position)
     FROM task_candidates tc JOIN completions c ON c.id = tc.completion_id
     WHERE tc.task_id = t.id) AS candidates,
    j.ranking, j.choice, j.ratings, j.flags, j.rationale, j.shown_order, j.time_spent_ms,
    j.created_at
  FROM judgments j JOIN comparison_tasks t ON t.id = j.task_id JOIN prompts p ON p.id = t.prompt_id
  ORDER BY j.task_id, j.id
) TO STDOUT"""


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child_export(shape: str, fmt: str, out: str) -> None:
    """Runs in a fresh process: one export, then a JSON line with its measurements."""
    from app.exports.schemas import ExportFilters
    from app.exports.service import Export

    base = rss_mb()
    export = Export(ExportFilters(), shape, fmt)
    start = time.perf_counter()
    with open(out, "wb") as fh:
        for chunk in export.chunks():
            fh.write(chunk)
    wall = time.perf_counter() - start
    export.stats.as_dict()  # include the agreement computation in the peak
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": export.stats.rows, "wall": wall, "base_mb": base, "peak_mb": peak,
                      "bytes": os.path.getsize(out)}))  # fmt: skip


def child_copy(url: str, out: str) -> None:
    import psycopg

    base = rss_mb()
    start = time.perf_counter()
    rows = 0
    with psycopg.connect(url) as conn, conn.cursor() as cur, open(out, "wb") as fh:
        with cur.copy(COPY_SQL) as copy:
            for data in copy:
                fh.write(data)
                rows += bytes(data).count(b"\n")
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "wall": wall, "base_mb": base, "peak_mb": peak,
                      "bytes": os.path.getsize(out)}))  # fmt: skip


def generate(url: str, judgments: int) -> float:
    from sqlalchemy import create_engine, text

    from app.ops.migrate import upgrade

    upgrade(url)
    tasks = judgments // PER_TASK
    engine = create_engine(url)
    start = time.perf_counter()
    with engine.begin() as conn:
        for sql in GENERATE:
            conn.execute(text(sql.format(labelers=LABELERS, tasks=tasks, per_task=PER_TASK)))
    engine.dispose()
    return time.perf_counter() - start


def run_child(env: dict[str, str], *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument(
        "--exports", nargs="+", default=["raw:jsonl", "trl:jsonl", "raw:parquet", "rankings:jsonl"]
    )
    args = ap.parse_args()

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(args.url).set(drivername="postgresql+psycopg")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    tmp = Path(tempfile.mkdtemp(prefix="prefloop-bench-"))
    print("| judgments | export | rows | wall s | rows/s | vs COPY | MB out | RSS base MB "
          "| RSS peak MB |\n|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for n in args.sizes:
        name = f"prefloop_bench_export_{os.getpid()}"
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        try:
            gen = generate(url, n)
            print(f"<!-- generated {n} judgments in {gen:.1f}s -->", flush=True)
            env = {**os.environ, "PREFLOOP_DATABASE_URL": url, "PREFLOOP_SECRET_KEY": "bench"}
            libpq = make_url(url).set(drivername="postgresql").render_as_string(False)
            copy = run_child(env, "--child-copy", libpq, str(tmp / "copy.txt"))
            results = [("COPY TO STDOUT (raw rows)", copy)]
            for spec in args.exports:
                shape, fmt = spec.split(":")
                r = run_child(env, "--child-export", shape, fmt, str(tmp / f"{shape}.{fmt}"))
                results.append((f"{shape} {fmt}", r))
            for label, r in results:
                ratio = r["wall"] / copy["wall"]
                print(
                    f"| {n:,} | {label} | {int(r['rows']):,} | {r['wall']:.1f} "
                    f"| {r['rows'] / r['wall']:,.0f} | {ratio:.1f}x | {r['bytes'] / 2**20:.0f} "
                    f"| {r['base_mb']:.0f} | {r['peak_mb']:.0f} |",
                    flush=True,
                )
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-export":
        child_export(*sys.argv[2:5])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-copy":
        child_copy(*sys.argv[2:4])
    else:
        main()
