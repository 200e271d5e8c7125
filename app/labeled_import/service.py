"""Store labeled records: prompts, candidates and tasks, plus judgments attributed to a source.

Judgments get user_id NULL, source = the source name and a stable external_id, so importing the
same file again adds nothing. Tasks that only hold imported judgments are marked complete with
required_judgments = their judgment count, so labelers are never offered them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.labeled_import import parsers
from app.labeled_import.records import LabeledRecord
from app.models import Battle, ComparisonTask, Completion, Judgment, TaskCandidate, TaskStatus
from app.ops.errors import check_no_nul
from app.prompts import store
from app.prompts.parsing import Record, Reject

CHUNK = 500


@dataclass
class PreferenceImportSummary:
    format: str
    source: str
    records: int = 0
    tasks_created: int = 0
    completions_created: int = 0
    judgments_created: int = 0
    already_present: int = 0
    battles_created: int = 0


def check_source(source: str) -> str:
    """The source name judgments are attributed to: 1-200 characters, no NUL."""
    source = source.strip()
    if not source or len(source) > 200:
        raise ValueError("source name must be 1-200 characters")
    return check_no_nul(source, "source name")


@dataclass
class ImportResult:
    format: str
    summary: PreferenceImportSummary
    rejects: list[Reject] = field(default_factory=list)


def import_file(
    data: bytes, source: str, fmt: str = "auto", skip_invalid: bool = False
) -> ImportResult:
    """Parse and import a whole file in its own transaction (FileErrors or ValueError when
    refused). Synchronous: the API runs it in a helper process (app.ops.offload)."""
    from app.db import session_scope

    source = check_source(source)
    fmt, records, rejects = parsers.parse_all(data, fmt)
    parsers.accept(records, rejects, skip_invalid)
    with session_scope() as session:
        summary = import_preferences(session, records, source, fmt)
    return ImportResult(fmt, summary, rejects)


def _chunks(items: list[int]) -> list[list[int]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def import_preferences(
    session: Session, records: list[LabeledRecord], source: str, fmt: str
) -> PreferenceImportSummary:
    """Write every record in the session's transaction (flush only; the caller commits)."""
    source = check_source(source)
    summary = PreferenceImportSummary(format=fmt, source=source, records=len(records))
    prompt_records = [
        Record(
            line=r.line,
            messages=r.messages,
            is_chat=r.is_chat,
            tags=r.tags,
            completions=[(text, source) for text in r.completions],
            required_judgments=1,
        )
        for r in records
    ]
    created, task_ids = store.import_comparisons(session, prompt_records, 1)
    summary.tasks_created = created.tasks_created
    summary.completions_created = created.completions_created
    unique_tasks = sorted(set(task_ids))
    by_hash: dict[tuple[int, str], int] = {}
    existing: set[tuple[int, str | None]] = set()
    for chunk in _chunks(unique_tasks):
        by_hash.update(
            {
                (tid, h): cid
                for tid, h, cid in session.execute(
                    select(TaskCandidate.task_id, Completion.content_hash, Completion.id)
                    .join(Completion, Completion.id == TaskCandidate.completion_id)
                    .where(TaskCandidate.task_id.in_(chunk))
                )
            }
        )
        existing.update(
            session.execute(
                select(Judgment.task_id, Judgment.external_id).where(
                    Judgment.task_id.in_(chunk), Judgment.source == source
                )
            )
        )
    new: list[Judgment] = []
    for r, tid in zip(records, task_ids, strict=True):
        if (tid, r.external_id) in existing:
            summary.already_present += 1
            continue
        existing.add((tid, r.external_id))
        ids = [by_hash[(tid, store.completion_hash(text, source))] for text in r.completions]
        new.append(
            Judgment(
                task_id=tid,
                user_id=None,
                source=source,
                external_id=r.external_id,
                ranking=[[ids[i] for i in group] for group in r.ranking],
                choice=r.choice,
                ratings={},
                flags=[],
            )
        )
    session.add_all(new)
    session.flush()
    summary.judgments_created = len(new)
    _settle_tasks(session, sorted({j.task_id for j in new}))
    summary.battles_created = _battles(session, records, task_ids, by_hash, source)
    return summary


def _battles(
    session: Session,
    records: list[LabeledRecord],
    task_ids: list[int],
    by_hash: dict[tuple[int, str], int],
    source: str,
) -> int:
    """Battle rows for arena records (one per task: later judgments of it are more outcomes)."""
    arena = [(r, t) for r, t in zip(records, task_ids, strict=True) if r.models is not None]
    if not arena:
        return 0
    have: set[int] = set()
    for chunk in _chunks(sorted({t for _, t in arena})):
        have.update(session.scalars(select(Battle.task_id).where(Battle.task_id.in_(chunk))))
    made = 0
    for r, tid in arena:
        if tid in have:
            continue
        have.add(tid)
        ca, cb = (by_hash[(tid, store.completion_hash(text, source))] for text in r.completions)
        assert r.models is not None  # arena records always name both models
        a, b = r.models
        session.add(Battle(task_id=tid, model_a=a, model_b=b, completion_a_id=ca,
                           completion_b_id=cb, source=source))  # fmt: skip
        made += 1
    session.flush()
    return made


def _settle_tasks(session: Session, task_ids: list[int]) -> None:
    """Recount judgments; tasks holding only imported judgments become complete."""
    for chunk in _chunks(task_ids):
        counts = session.execute(
            select(Judgment.task_id, func.count(), func.count(Judgment.user_id))
            .where(Judgment.task_id.in_(chunk))
            .group_by(Judgment.task_id)
        ).all()
        tasks = {
            t.id: t
            for t in session.scalars(select(ComparisonTask).where(ComparisonTask.id.in_(chunk)))
        }
        for tid, total, by_labelers in counts:
            task = tasks[tid]
            task.judgment_count = total
            if by_labelers == 0:
                task.required_judgments = total
            if total >= task.required_judgments:
                task.status = TaskStatus.complete
    session.flush()
