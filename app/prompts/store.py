"""Write parsed records: prompts, completions and comparison tasks, deduplicated by content."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ComparisonTask, Completion, Prompt, TaskCandidate
from app.prompts.parsing import Record

CHUNK = 500


def sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def prompt_hash(messages: list[dict[str, str]]) -> str:
    return sha(["prompt", messages])


def completion_hash(text: str, source: str | None) -> str:
    return sha(["completion", text, source])


def task_key(p_hash: str, c_hashes: list[str]) -> str:
    return sha(["task", p_hash, sorted(c_hashes)])


@dataclass
class ImportSummary:
    records: int = 0
    prompts_created: int = 0
    completions_created: int = 0
    tasks_created: int = 0
    duplicates: int = 0


def upsert_prompts(
    session: Session, records: list[Record], needs_candidates: bool
) -> dict[str, int]:
    """Map prompt hash -> id, creating missing prompts. Returns the map."""
    hashes = {prompt_hash(r.messages): r for r in records}
    ids: dict[str, int] = {}
    keys = list(hashes)
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i : i + CHUNK]
        ids.update(
            session.execute(
                select(Prompt.content_hash, Prompt.id).where(Prompt.content_hash.in_(chunk))
            ).all()
        )
    new = [
        Prompt(
            content_hash=h,
            messages=r.messages,
            is_chat=r.is_chat,
            tags=r.tags,
            needs_candidates=needs_candidates,
        )
        for h, r in hashes.items()
        if h not in ids
    ]
    session.add_all(new)
    session.flush()
    ids.update({p.content_hash: p.id for p in new})
    return ids


def import_prompts(session: Session, records: list[Record]) -> ImportSummary:
    before = session.scalar(select(Prompt.id).order_by(Prompt.id.desc()).limit(1)) or 0
    ids = upsert_prompts(session, records, needs_candidates=True)
    created = sum(1 for v in ids.values() if v > before)
    return ImportSummary(
        records=len(records), prompts_created=created, duplicates=len(records) - created
    )


def import_comparisons(
    session: Session,
    records: list[Record],
    default_required: int,
    model_version_ids: dict[str, int] | None = None,
) -> tuple[ImportSummary, list[int]]:
    """Create tasks for records; returns the summary and every record's task id (new or old)."""
    summary = ImportSummary(records=len(records))
    p_ids = upsert_prompts(session, records, needs_candidates=False)
    # completions
    wanted: dict[tuple[int, str], tuple[str, str | None]] = {}
    for r in records:
        pid = p_ids[prompt_hash(r.messages)]
        for text, source in r.completions:
            wanted[(pid, completion_hash(text, source))] = (text, source)
    c_ids: dict[tuple[int, str], int] = {}
    keys = list(wanted)
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i : i + CHUNK]
        rows = session.execute(
            select(Completion.prompt_id, Completion.content_hash, Completion.id).where(
                Completion.prompt_id.in_({k[0] for k in chunk}),
                Completion.content_hash.in_({k[1] for k in chunk}),
            )
        )
        c_ids.update({(p, h): cid for p, h, cid in rows})
    versions = model_version_ids or {}
    new_c = [
        Completion(
            prompt_id=k[0],
            content_hash=k[1],
            text=v[0],
            source=v[1],
            model_version_id=versions.get(v[1] or ""),
        )
        for k, v in wanted.items()
        if k not in c_ids
    ]
    session.add_all(new_c)
    session.flush()
    c_ids.update({(c.prompt_id, c.content_hash): c.id for c in new_c})
    summary.completions_created = len(new_c)
    # tasks
    per_record: list[tuple[str, int, list[int], Record]] = []
    for r in records:
        ph = prompt_hash(r.messages)
        pid = p_ids[ph]
        hashes = [completion_hash(t, s) for t, s in r.completions]
        per_record.append((task_key(ph, hashes), pid, [c_ids[(pid, h)] for h in hashes], r))
    existing: dict[str, int] = {}
    tkeys = list({k for k, *_ in per_record})
    for i in range(0, len(tkeys), CHUNK):
        key_chunk = tkeys[i : i + CHUNK]
        existing.update(
            session.execute(
                select(ComparisonTask.dedupe_key, ComparisonTask.id).where(
                    ComparisonTask.dedupe_key.in_(key_chunk)
                )
            ).all()
        )
    created: dict[str, ComparisonTask] = {}
    candidates: dict[str, list[int]] = {}
    for key, pid, cids, r in per_record:
        if key in existing or key in created:
            summary.duplicates += 1
            continue
        created[key] = ComparisonTask(
            prompt_id=pid,
            dedupe_key=key,
            tags=r.tags,
            required_judgments=r.required_judgments or default_required,
        )
        candidates[key] = cids
    session.add_all(created.values())
    session.flush()
    session.add_all(
        TaskCandidate(task_id=t.id, position=i, completion_id=cid)
        for key, t in created.items()
        for i, cid in enumerate(candidates[key])
    )
    session.flush()
    summary.tasks_created = len(created)
    existing.update({k: t.id for k, t in created.items()})
    return summary, [existing[k] for k, *_ in per_record]
