"""The generate job in-process: candidates from the active policy, A/B versions, queue target."""

from __future__ import annotations

from sqlalchemy import func, select

from app.config import get_settings
from app.db import session_scope
from app.models import ComparisonTask, Completion, Prompt, RunStatus, TaskCandidate
from app.runs import service as runs
from tests.factories import make_tasks
from tests.workers.support import add_prompts, get_run, store_tiny
from workers.runner import Worker, maybe_fill_queue


def _run(params: dict) -> int:
    with session_scope() as s:
        rid = runs.create_run(s, "generate", params, None).id
    assert Worker(worker_id="t", fill_queue=False).tick()
    return rid


def _tasks(run_id: int) -> dict[int, list[tuple[int | None, str, dict]]]:
    with session_scope() as s:
        rows = s.execute(
            select(
                TaskCandidate.task_id,
                Completion.model_version_id,
                Completion.source,
                Completion.generation_params,
            )
            .join(Completion, Completion.id == TaskCandidate.completion_id)
            .join(ComparisonTask, ComparisonTask.id == TaskCandidate.task_id)
            .where(ComparisonTask.run_id == run_id)
        ).all()
    out: dict[int, list] = {}
    for tid, vid, source, params in rows:
        out.setdefault(tid, []).append((vid, source, params))
    return out


def test_generate_creates_tasks_from_active_policy(tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    vid, name = store_tiny(tiny_policy_dir)
    ids = add_prompts(4)
    rid = _run({"prompts": 4, "k": 3, "max_new_tokens": 24, "temperature": 1.0, "seed": 7})
    run = get_run(rid)
    assert run.status == RunStatus.succeeded, run.error
    tasks = _tasks(rid)
    assert run.metrics["tasks_created"] == len(tasks) >= 3
    assert run.progress_step == run.progress_total == 4
    for cands in tasks.values():
        assert 2 <= len(cands) <= 3
        for v, source, params in cands:
            assert v == vid and source == f"policy:{name}"
            assert params["max_new_tokens"] == 24 and params["run_id"] == rid
    with session_scope() as s:
        pending = s.scalar(select(func.count()).where(Prompt.id.in_(ids), Prompt.needs_candidates))
    assert pending == 4 - len(tasks)


def test_two_versions_are_pitted_against_each_other(tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    v1, n1 = store_tiny(tiny_policy_dir)
    v2, n2 = store_tiny(tiny_policy_dir, activate=False)
    add_prompts(4)
    rid = _run({"prompts": 4, "versions": [n1, n2], "max_new_tokens": 24, "temperature": 1.0})
    run = get_run(rid)
    assert run.status == RunStatus.succeeded, run.error
    assert run.metrics["versions"] == [n1, n2]
    tasks = _tasks(rid)
    assert tasks
    for cands in tasks.values():
        assert sorted(v for v, _, _ in cands) == [v1, v2]


def test_generate_fails_clearly_without_policy() -> None:
    add_prompts(1)
    rid = _run({"versions": ["nope"]})
    run = get_run(rid)
    assert run.status == RunStatus.failed and "no model version 'nope'" in (run.error or "")


def test_queue_target_queues_generate_runs_for_existing_prompts(tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    settings = get_settings().model_copy(update={"queue_target": 3})
    with session_scope() as s:
        assert maybe_fill_queue(s, settings) is None  # no prompts at all
    make_tasks(2)  # 2 open tasks, every prompt already has a task
    with session_scope() as s:
        run = maybe_fill_queue(s, settings)
        assert run is not None and run.params["auto"] and run.params["prompts"] == 1
    with session_scope() as s:
        assert maybe_fill_queue(s, settings) is None  # one generate run at a time
    store_tiny(tiny_policy_dir)
    assert Worker(worker_id="t", fill_queue=False).tick()
    run = get_run(run.id)
    assert run.status == RunStatus.succeeded and run.metrics["tasks_created"] == 1
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(ComparisonTask)) == 3
        assert maybe_fill_queue(s, settings) is None  # target reached


def test_generated_nul_bytes_are_stored_as_replacement_characters() -> None:
    """A sampled NUL token (tiny or broken models emit one) must not fail the run on PostgreSQL."""
    from workers.jobs.generate import select_prompts, write_task

    ids = add_prompts(1)
    with session_scope() as s:
        rid = runs.create_run(s, "generate", {"prompts": 1}, None).id
        (prompt,) = select_prompts(s, 1, ids, fresh=False)
        tid = write_task(s, prompt, [("a\x00b", None, "v1"), ("c", None, "v1")], {}, 1, rid)
    assert tid is not None
    with session_scope() as s:
        texts = s.scalars(
            select(Completion.text)
            .join(TaskCandidate, TaskCandidate.completion_id == Completion.id)
            .where(TaskCandidate.task_id == tid)
        ).all()
    assert sorted(texts) == ["a\ufffdb", "c"]
