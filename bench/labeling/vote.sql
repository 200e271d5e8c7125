-- The bare SQL of one vote: insert a judgment and count it on its task, committed.
-- pgbench -D ntasks=N; user_id stays NULL so random picks never hit the (task_id, user_id) key.
\set tid random(1, :ntasks)
BEGIN;
INSERT INTO judgments (task_id, ranking, ratings, flags, shown_order, time_spent_ms, created_at)
  VALUES (:tid, '[[1], [2]]', '{}', '[]', '[1, 2]', 1000, now());
UPDATE comparison_tasks
  SET judgment_count = judgment_count + 1,
      status = CASE WHEN judgment_count + 1 >= required_judgments THEN 'complete' ELSE 'open' END
  WHERE id = :tid;
COMMIT;
