"""`generate` runs: sample K candidates per prompt from policy versions, create comparison tasks.

Prompt choice: the given `prompt_ids`, else prompts flagged needs_candidates (oldest first), then,
while `fresh` (default true) and fewer than `prompts` were found, other prompts with a new seed:
those without an open task first, then the least-generated (random among equals), so the queue
never runs dry.
With `versions: [a, b]` the K candidates alternate between those versions (A/B); labelers see them
anonymously in a per-assignment random order. Each batch of prompts is committed on its own, so a
cancelled run keeps the tasks it already made.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from app.models import (
    ComparisonTask,
    Completion,
    ModelKind,
    ModelStatus,
    Prompt,
    TaskCandidate,
    TaskStatus,
)
from app.models_registry import service as registry
from app.prompts.store import completion_hash, task_key
from ml.limits import INT32_MAX, replace_nul
from workers import selection
from workers.context import JobContext
from workers.jobs.training import config_from

MAX_CACHED = 2
_generators: OrderedDict[str, Any] = OrderedDict()


class GenerateError(RuntimeError):
    pass


def generator_for(path: str, settings: Any, model_name: str, place: Any = None) -> Any:
    """A generator for a version (cached per worker process: loading a model takes seconds)."""
    from ml.generate import generator_for_settings

    remote = settings.generation_backend == "openai"
    key = f"{path}|{place}"
    if not remote and key in _generators:
        _generators.move_to_end(key)
        return _generators[key]
    try:
        gen = generator_for_settings(path, model_name, settings, place)
    except ValueError as e:
        raise GenerateError(str(e)) from None
    if remote:
        return gen
    _generators[key] = gen
    while len(_generators) > MAX_CACHED:
        _generators.popitem(last=False)
    return gen


def resolve_versions(session: Session, refs: Any) -> list[tuple[int | None, str, str]]:
    """(id, version, path) for the requested versions, or the active policy."""
    if refs in (None, "", []):
        mv = registry.active_version(session, ModelKind.policy)
        if mv is None:
            raise GenerateError(
                "no active policy; start `prefloop worker` (it sets one up) or "
                "`prefloop models activate VERSION`"
            )
        return [(mv.id, mv.version, mv.path)]
    if isinstance(refs, str):
        refs = [r.strip() for r in refs.split(",") if r.strip()]
    if not isinstance(refs, list):
        raise GenerateError("param versions must be a list of version names or ids")
    out: list[tuple[int | None, str, str]] = []
    for ref in refs:
        try:
            mv = registry.get_version(session, ref)
        except registry.VersionNotFound as e:
            raise GenerateError(str(e)) from e
        if mv.kind != ModelKind.policy or mv.status in (ModelStatus.training, ModelStatus.failed):
            raise GenerateError(f"version {mv.version} is a {mv.kind.value} {mv.status.value}")
        out.append((mv.id, mv.version, mv.path))
    return out


def select_prompts(
    session: Session, limit: int, prompt_ids: list[int] | None, fresh: bool
) -> list[tuple[int, str, list, list]]:
    """(id, content_hash, messages, tags) of the prompts this run generates for."""
    cols = (Prompt.id, Prompt.content_hash, Prompt.messages, Prompt.tags)
    if prompt_ids:
        chosen = session.execute(select(*cols).where(Prompt.id.in_(prompt_ids)).order_by(Prompt.id))
        return [tuple(r) for r in chosen]
    rows = list(
        session.execute(
            select(*cols).where(Prompt.needs_candidates).order_by(Prompt.id).limit(limit)
        )
    )
    if fresh and len(rows) < limit:
        tasks = (
            select(ComparisonTask.prompt_id, func.count().label("n"))
            .group_by(ComparisonTask.prompt_id)
            .subquery()
        )
        with_open = select(ComparisonTask.prompt_id).where(ComparisonTask.status == TaskStatus.open)
        has_open = case((Prompt.id.in_(with_open), 1), else_=0)
        rows += session.execute(
            select(*cols)
            .outerjoin(tasks, tasks.c.prompt_id == Prompt.id)
            .where(~Prompt.needs_candidates)
            .order_by(has_open, func.coalesce(tasks.c.n, 0), func.random())
            .limit(limit - len(rows))
        ).all()
    return [tuple(r) for r in rows]


def add_completion(
    session: Session,
    pid: int,
    h: str,
    text: str,
    vid: int | None,
    vname: str,
    gen_params: dict[str, Any],
) -> int:
    """Store one generated completion (content hash `h`) of version `vname`; its id."""
    c = Completion(
        prompt_id=pid,
        content_hash=h,
        text=text,
        source=f"policy:{vname}",
        model_version_id=vid,
        generation_params={**gen_params, "model_version": vname},
    )
    session.add(c)
    session.flush()
    return c.id


def write_task(
    session: Session,
    prompt: tuple[int, str, list, list],
    samples: list[tuple[str, int | None, str]],
    gen_params: dict[str, Any],
    required: int,
    run_id: int,
) -> int | None:
    """Store distinct candidates (text, version id, version) as one task; the new task id."""
    pid, phash, _messages, tags = prompt
    seen: dict[str, tuple[str, int | None, str]] = {}
    for text, vid, vname in samples:
        # a model can emit a NUL byte token; PostgreSQL text cannot store it
        text = replace_nul(text).strip()
        h = completion_hash(text, f"policy:{vname}")
        if text and h not in seen and text not in {t for t, _, _ in seen.values()}:
            seen[h] = (text, vid, vname)
    if len(seen) < 2:
        return None
    key = task_key(phash, list(seen))
    if session.scalar(select(ComparisonTask.id).where(ComparisonTask.dedupe_key == key)):
        return None
    existing = dict(
        session.execute(
            select(Completion.content_hash, Completion.id).where(
                Completion.prompt_id == pid, Completion.content_hash.in_(list(seen))
            )
        ).all()
    )
    cids = []
    for h, (text, vid, vname) in seen.items():
        if h not in existing:
            existing[h] = add_completion(session, pid, h, text, vid, vname, gen_params)
        cids.append(existing[h])
    random.shuffle(cids)
    task = ComparisonTask(
        prompt_id=pid,
        dedupe_key=key,
        required_judgments=required,
        tags=list(tags or []) + ["generated"],
        run_id=run_id,
    )
    session.add(task)
    session.flush()
    session.add_all(
        TaskCandidate(task_id=task.id, position=i, completion_id=c) for i, c in enumerate(cids)
    )
    session.execute(update(Prompt).where(Prompt.id == pid).values(needs_candidates=False))
    session.flush()
    return task.id


def run(ctx: JobContext) -> dict[str, Any]:
    """Generate candidates and create comparison tasks; returns counts and throughput."""
    import time

    from ml.device import placement
    from ml.generate import GenerationParams
    from ml.params import GenerateParams
    from workers.bootstrap_policy import ensure_active_policy

    s = ctx.settings
    p = config_from(ctx.params, GenerateParams)
    k = s.generate_k if p.k is None else p.k
    if k < 2:
        raise GenerateError("k must be at least 2 (a comparison needs two candidates)")
    seed = p.seed if p.seed is not None else random.randrange(INT32_MAX)
    required = p.required_judgments or s.default_required_judgments
    batch = p.batch_prompts
    limit = p.prompts or max(s.queue_target, 1)
    gp: dict[str, Any] = {
        "max_new_tokens": s.max_new_tokens if p.max_new_tokens is None else p.max_new_tokens,
        "temperature": s.temperature if p.temperature is None else p.temperature,
        "top_p": s.top_p if p.top_p is None else p.top_p,
    }
    if not p.versions:
        ensure_active_policy(s, log=ctx.log)
    with ctx.session() as session:
        external = s.generation_backend == "openai" and s.generation_model
        if external and not p.versions and not registry.active_version(session, "policy"):
            versions: list[tuple[int | None, str, str]] = [(None, s.generation_model, "")]
        else:
            versions = resolve_versions(session, p.versions)
        prompts = select_prompts(session, limit, p.prompt_ids, p.fresh)
        sel = selection.plan(session, s, ctx.params, k, len(versions), seed, ctx.log)
    ctx.log(
        f"{len(prompts)} prompts, k={k}, versions={[v[1] for v in versions]}, seed={seed}, {gp}"
    )
    place = placement(p.device or s.device, p.dtype or s.dtype, training=False)
    gens = {vid: generator_for(path, s, name, place) for vid, name, path in versions}
    total, created, tokens_out = len(prompts), 0, 0
    skipped_ids: list[int] = []
    ctx.progress(0, total, {"tasks_created": 0})
    started = time.monotonic()
    for start in range(0, total, batch):
        ctx.check_stop()
        chunk = prompts[start : start + batch]
        samples: list[list[tuple[str, int | None, str]]] = [[] for _ in chunk]
        for vi, (vid, vname, _path) in enumerate(versions):
            n = len(range(vi, sel.sample, len(versions)))  # candidate j from version j % len
            if n == 0:
                continue
            params = GenerationParams(seed=seed + start * 1000 + vi, **gp)
            texts = gens[vid].generate([list(c[2]) for c in chunk], n, params)
            for i, outs in enumerate(texts):
                samples[i].extend((t, vid, vname) for t in outs)
                tokens_out += sum(len(t.split()) for t in outs)
        kept = [sel.keep(prompt[2], samples[i]) for i, prompt in enumerate(chunk)]  # scores
        with ctx.session() as session:
            for i, prompt in enumerate(chunk):
                gen_params = {**gp, "seed": seed + start * 1000, "run_id": ctx.run_id, "k": k}
                tid = write_task(session, prompt, kept[i][0], gen_params, required, ctx.run_id)
                if tid is None:
                    skipped_ids.append(prompt[0])
                else:
                    sel.record(session, tid, kept[i][1])
                    created += 1
        done = min(start + batch, total)
        ctx.progress(done, total, {"tasks_created": created, "prompts_skipped": len(skipped_ids)})
    skipped = len(skipped_ids)
    if skipped:  # one line, so a rerun cannot flood the log tail
        shown = ", ".join(map(str, skipped_ids[:20])) + (" ..." if skipped > 20 else "")
        ctx.log(f"{skipped} prompt(s) skipped, fewer than 2 distinct new candidates: {shown}")
    elapsed = time.monotonic() - started
    return {
        "tasks_created": created,
        "prompts_skipped": skipped,
        "prompts": total,
        "k": k,
        "seed": seed,
        "versions": [v[1] for v in versions],
        "device": place.device,
        "dtype": place.dtype,
        **sel.summary(),
        "seconds": round(elapsed, 2),
        "words_per_s": round(tokens_out / elapsed, 1) if elapsed > 0 else None,
    }
