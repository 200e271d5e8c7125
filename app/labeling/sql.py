"""The hot path's SQL, composed once at import from the rules in app.labeling.rules.

PostgreSQL: each request is ONE statement (data-modifying CTEs) run in autocommit, so the
statement is its own transaction and psycopg returns only after the commit.

- NEXT leases a task: the labeler's live lease if they hold one, else the first eligible task
  in queue order taken FOR UPDATE SKIP LOCKED, so concurrent labelers fan out. One statement
  has one snapshot, so a lease committed by another labeler after it started is invisible to
  its rule check; every lease therefore also writes a new version of its task row, and the pick
  only accepts a task whose locked row is still the version its snapshot saw (`xmin` compared
  with a plain read of the same row). A task leased meanwhile is passed over, not overfilled.
- SUBMIT locks the task row, then decides (auth, not found, already judged, not assigned,
  skipped, invalid ranking, full) and only for "ok" inserts the judgment, counts it on the task
  and closes the assignment.
- SUBMIT_NEXT is SUBMIT followed by NEXT in the same statement; the task lock is taken first
  (NEXT's scan waits on the verdict), and NEXT's part never takes the task just submitted.

Every statement also checks `users.auth_version = :av AND users.active` (the caller's cached
principal) and writes nothing when it fails.

SQLite has no data-modifying CTEs and no row locks: app.labeling.store runs the same rule
fragments as a few statements inside BEGIN IMMEDIATE (the single writer lock).
"""

from __future__ import annotations

import re

from app.labeling.rules import (
    COUNTS,
    ELIGIBLE,
    GOLD_ELIGIBLE,
    GOLD_ORDER_BY,
    HELD,
    HELD_ORDER_BY,
    order_by,
    where,
)

AUTH = "SELECT 1 FROM users WHERE id = :uid AND auth_version = :av AND active"

# what a submit's verdict may be, in the order they are checked
VERDICTS = ("auth", "not_found", "exists", "not_assigned", "skipped", "choice_k", "bad_ranking",
            "full", "ok")  # fmt: skip
# after these, SUBMIT_NEXT also offers the next task (the labeler moves on)
MOVE_ON = ("ok", "exists", "not_assigned", "skipped", "full")

JUDGMENT_COLS = (
    "id, task_id, ranking, choice, ratings, flags, rationale, time_spent_ms, shown_order, "
    "created_at"
)


def _iso(col: str) -> str:
    return f"""to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


_PG_JUDGMENT_OUT = (
    "id, task_id, ranking::text AS ranking, choice, ratings::text AS ratings, flags::text AS "
    f"flags, rationale, time_spent_ms, shown_order::text AS shown_order, {_iso('created_at')} "
    "AS created_at"
)


def _pg_next(gate: str, exclude: str, eligible: list[str], fresh_check: bool = True) -> str:
    """CTEs held, pick, shuffled, lease, bump, chosen, offer (gate: when to run at all)."""
    fresh = (
        "\n    AND t.xmin = (SELECT s.xmin FROM comparison_tasks s WHERE s.id = t.id)"
        if fresh_check
        else ""
    )
    return f"""
held AS (
  SELECT a.task_id, a.shown_order, a.expires_at
  FROM assignments a JOIN comparison_tasks t ON t.id = a.task_id
  WHERE {gate} AND {where(HELD)}{exclude.replace("t.id", "a.task_id")}
  ORDER BY {HELD_ORDER_BY} LIMIT 1
),
gold_pick AS (
  -- gold needs no lock: it never fills up, and a labeler's lease on it is theirs alone
  SELECT t.id FROM comparison_tasks t
  WHERE {gate} AND :gold AND NOT EXISTS (SELECT 1 FROM held)
    AND {where(GOLD_ELIGIBLE)}{exclude}
  ORDER BY {GOLD_ORDER_BY} LIMIT 1
),
pick AS (
  SELECT t.id FROM comparison_tasks t
  WHERE {gate} AND NOT EXISTS (SELECT 1 FROM held) AND NOT EXISTS (SELECT 1 FROM gold_pick)
    AND {where(eligible)}{exclude}{fresh}
  ORDER BY {order_by()} LIMIT 1
  FOR UPDATE OF t SKIP LOCKED
),
picked AS (
  SELECT id FROM gold_pick UNION ALL SELECT id FROM pick
),
shuffled AS (
  SELECT jsonb_agg(tc.completion_id ORDER BY random()) AS shown_order
  FROM task_candidates tc WHERE tc.task_id = (SELECT id FROM picked)
),
lease AS (
  INSERT INTO assignments (task_id, user_id, shown_order, status, leased_at, expires_at)
  SELECT p.id, :uid, s.shown_order, 'active', :now, :expires FROM picked p, shuffled s
  ON CONFLICT (task_id, user_id) DO UPDATE SET shown_order = excluded.shown_order,
    status = 'active', leased_at = excluded.leased_at, expires_at = excluded.expires_at
  RETURNING task_id, shown_order, expires_at
),
bump AS (
  -- a new row version: a concurrent pick whose snapshot predates this lease passes it over
  UPDATE comparison_tasks SET status = status WHERE id = (SELECT id FROM pick)
),
chosen AS (
  SELECT task_id, shown_order, expires_at FROM held
  UNION ALL
  SELECT task_id, shown_order, expires_at FROM lease
),
offer AS (
  SELECT c.task_id AS next_id, {_iso("c.expires_at")} AS next_expires,
    t.required_judgments AS next_required, t.tags::text AS next_tags,
    CASE WHEN p.is_chat THEN p.messages::text ELSE (p.messages -> 0 -> 'content')::text END
      AS next_prompt,
    ARRAY(SELECT e.id::int FROM jsonb_array_elements_text(c.shown_order) WITH ORDINALITY e(id, n)
          ORDER BY e.n) AS next_ids,
    ARRAY(SELECT co.text FROM jsonb_array_elements_text(c.shown_order) WITH ORDINALITY e(id, n)
          JOIN completions co ON co.id = e.id::int ORDER BY e.n) AS next_texts
  FROM chosen c
  JOIN comparison_tasks t ON t.id = c.task_id
  JOIN prompts p ON p.id = t.prompt_id
)"""


def _pg_busy(gate: str, exclude: str, eligible: list[str]) -> str:
    """True when nothing was offered although an eligible task is visible: locked by another
    labeler's statement or changed since this snapshot. The caller runs the statement again."""
    return f"""CASE WHEN o.next_id IS NULL AND {gate} THEN EXISTS (
    SELECT 1 FROM comparison_tasks t WHERE {where(eligible)}{exclude}) ELSE false END AS busy"""


_PG_SUBMIT = f"""
task AS (
  SELECT t.id, t.required_judgments, t.judgment_count, t.status FROM comparison_tasks t
  WHERE t.id = :tid AND EXISTS (SELECT 1 FROM auth)
  FOR UPDATE
),
asg AS (
  SELECT a.id, a.shown_order, a.status FROM assignments a
  WHERE a.task_id = :tid AND a.user_id = :uid
),
prev AS (
  SELECT {_PG_JUDGMENT_OUT} FROM judgments WHERE task_id = :tid AND user_id = :uid
),
verdict AS (
  SELECT CASE
    WHEN NOT EXISTS (SELECT 1 FROM auth) THEN 'auth'
    WHEN NOT EXISTS (SELECT 1 FROM task) THEN 'not_found'
    WHEN EXISTS (SELECT 1 FROM prev) THEN 'exists'
    WHEN NOT EXISTS (SELECT 1 FROM asg) THEN 'not_assigned'
    WHEN (SELECT status FROM asg) = 'skipped' THEN 'skipped'
    WHEN :positions IS NOT NULL
      AND jsonb_array_length((SELECT shown_order FROM asg)) <> 2 THEN 'choice_k'
    WHEN :positions IS NULL AND :flat <> ARRAY(
      SELECT x::int FROM jsonb_array_elements_text((SELECT shown_order FROM asg)) x ORDER BY 1)
      THEN 'bad_ranking'
    WHEN (SELECT judgment_count >= required_judgments AND {COUNTS} FROM task) THEN 'full'
    ELSE 'ok' END AS code
),
ranked AS (
  -- 'choice' arrives as positions in the order shown ([[0], [1]] for "a"): map them to ids
  SELECT a.shown_order, CASE WHEN :positions IS NULL THEN :ranking ELSE (
    SELECT jsonb_agg((
      SELECT jsonb_agg(a.shown_order -> (p.pos::int) ORDER BY p.n)
      FROM jsonb_array_elements_text(g.grp) WITH ORDINALITY p(pos, n)) ORDER BY g.n)
    FROM jsonb_array_elements(:positions) WITH ORDINALITY g(grp, n)) END AS ranking
  FROM asg a
),
ins AS (
  INSERT INTO judgments (task_id, user_id, ranking, choice, ratings, flags, rationale,
                         time_spent_ms, shown_order, created_at)
  SELECT :tid, :uid, r.ranking, :choice, :ratings, :flags, :rationale, :spent, r.shown_order, :now
  FROM ranked r WHERE (SELECT code FROM verdict) = 'ok'
  ON CONFLICT (task_id, user_id) DO NOTHING
  RETURNING {_PG_JUDGMENT_OUT}
),
counted AS (
  UPDATE comparison_tasks t SET judgment_count = t.judgment_count + 1,
    status = CASE WHEN t.judgment_count + 1 >= t.required_judgments THEN 'complete' ELSE 'open' END
  WHERE t.id = :tid AND {COUNTS} AND EXISTS (SELECT 1 FROM ins)
),
closed AS (
  UPDATE assignments SET status = 'submitted'
  WHERE task_id = :tid AND user_id = :uid AND EXISTS (SELECT 1 FROM ins)
),
stored AS (
  SELECT * FROM ins UNION ALL SELECT * FROM prev
)"""

_PG_SUBMIT_SELECT = """v.code, (SELECT shown_order::text FROM asg) AS asg_order,
  (SELECT required_judgments FROM task) AS required, s.*"""

_MOVE_ON_GATE = "(SELECT code FROM verdict) IN ({})".format(", ".join(f"'{c}'" for c in MOVE_ON))
_EXCLUDE_SUBMITTED = "\n    AND t.id <> :tid"

_AUTHED = "EXISTS (SELECT 1 FROM auth)"


def pg_next(eligible: list[str] = ELIGIBLE, fresh_check: bool = True) -> str:
    """NEXT; tests pass other rules (or drop the fresh-version check to show what it prevents)."""
    return f"""WITH auth AS ({AUTH}),{_pg_next(_AUTHED, "", eligible, fresh_check)}
SELECT {_AUTHED} AS auth_ok, o.*, {_pg_busy(_AUTHED, "", eligible)}
FROM (SELECT 1) one LEFT JOIN offer o ON true"""


def pg_submit() -> str:
    return f"""WITH auth AS ({AUTH}),{_PG_SUBMIT}
SELECT {_PG_SUBMIT_SELECT}
FROM verdict v LEFT JOIN stored s ON true"""


def pg_submit_next(eligible: list[str] = ELIGIBLE) -> str:
    nxt = _pg_next(_MOVE_ON_GATE, _EXCLUDE_SUBMITTED, eligible)
    return f"""WITH auth AS ({AUTH}),{_PG_SUBMIT},{nxt}
SELECT {_PG_SUBMIT_SELECT}, o.*, {_pg_busy(_MOVE_ON_GATE, _EXCLUDE_SUBMITTED, eligible)}
FROM verdict v LEFT JOIN stored s ON true LEFT JOIN offer o ON true"""


# --- SQLite: the same fragments as separate statements inside BEGIN IMMEDIATE -----------------

SQLITE_AUTH = AUTH
SQLITE_HELD = f"""SELECT a.task_id, a.shown_order, a.expires_at
FROM assignments a JOIN comparison_tasks t ON t.id = a.task_id
WHERE {where(HELD)} AND a.task_id IS NOT :tid
ORDER BY {HELD_ORDER_BY} LIMIT 1"""
SQLITE_GOLD_PICK = f"""SELECT t.id FROM comparison_tasks t
WHERE {where(GOLD_ELIGIBLE)} AND t.id IS NOT :tid
ORDER BY {GOLD_ORDER_BY} LIMIT 1"""
SQLITE_PICK = f"""SELECT t.id FROM comparison_tasks t
WHERE {where(ELIGIBLE)} AND t.id IS NOT :tid
ORDER BY {order_by()} LIMIT 1"""
SQLITE_CANDIDATES = "SELECT completion_id FROM task_candidates WHERE task_id = :task"
SQLITE_LEASE = """INSERT INTO assignments (task_id, user_id, shown_order, status, leased_at,
  expires_at) VALUES (:task, :uid, :order, 'active', :now, :expires)
ON CONFLICT (task_id, user_id) DO UPDATE SET shown_order = excluded.shown_order,
  status = 'active', leased_at = excluded.leased_at, expires_at = excluded.expires_at"""
SQLITE_OFFER = """SELECT t.required_judgments, t.tags,
  CASE WHEN p.is_chat THEN p.messages ELSE json_quote(json_extract(p.messages, '$[0].content'))
  END
FROM comparison_tasks t JOIN prompts p ON p.id = t.prompt_id WHERE t.id = :task"""
SQLITE_TEXTS = """SELECT co.id, co.text FROM task_candidates tc
JOIN completions co ON co.id = tc.completion_id WHERE tc.task_id = :task"""
SQLITE_TASK = f"""SELECT required_judgments, judgment_count, {COUNTS}
FROM comparison_tasks WHERE id = :tid"""
SQLITE_PREV = f"SELECT {JUDGMENT_COLS} FROM judgments WHERE task_id = :tid AND user_id = :uid"
SQLITE_ASG = "SELECT shown_order, status FROM assignments WHERE task_id = :tid AND user_id = :uid"
SQLITE_INSERT = f"""INSERT INTO judgments (task_id, user_id, ranking, choice, ratings, flags,
  rationale, time_spent_ms, shown_order, created_at)
VALUES (:tid, :uid, :ranking, :choice, :ratings, :flags, :rationale, :spent, :order, :now)
RETURNING {JUDGMENT_COLS}"""
SQLITE_COUNT = f"""UPDATE comparison_tasks SET judgment_count = judgment_count + 1,
  status = CASE WHEN judgment_count + 1 >= required_judgments THEN 'complete' ELSE 'open' END
WHERE id = :tid AND {COUNTS}"""
SQLITE_CLOSE = "UPDATE assignments SET status = 'submitted' WHERE task_id = :tid AND user_id = :uid"

_PARAM = re.compile(r"(?<![:\w]):([a-z_]+)")

# PostgreSQL statements carry explicit parameter types: an untyped NULL cannot be planned
PG_TYPES = {
    "uid": "int",
    "av": "int",
    "tid": "int",
    "now": "timestamptz",
    "expires": "timestamptz",
    "positions": "jsonb",
    "ranking": "jsonb",
    "flat": "int[]",
    "choice": "text",
    "ratings": "jsonb",
    "flags": "jsonb",
    "rationale": "text",
    "spent": "int",
    "gold": "boolean",
}


def to_psycopg(sql: str) -> tuple[str, tuple[str, ...]]:
    """:name -> $n::type (PostgreSQL's own placeholders, for psycopg's raw cursor, which sends
    the text as is: no per-call parsing, whatever the statement's length). Returns the
    statement and the parameter names in $n order."""
    names: list[str] = []

    def placeholder(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}::{PG_TYPES[name]}"

    sql = re.sub(r"--[^\n]*", "", sql)  # comments go before the whitespace is folded
    return " ".join(_PARAM.sub(placeholder, sql).split()), tuple(names)


PG = {
    "next": to_psycopg(pg_next()),
    "submit": to_psycopg(pg_submit()),
    "submit_next": to_psycopg(pg_submit_next()),
}
