"""`battle` runs: answers for an arena campaign, generated ahead of time (never on a request).

Each battle is a fresh prompt (the least battled first, random among equals) with one answer from
each of two campaign versions, stored as an ordinary K=2 task (labelers see it anonymously, in a
per-assignment random order, through the usual pairwise page) plus a `battles` row saying which
answer is whose. Pairs are drawn with weights favouring versions whose rating intervals overlap
most (app.arena.ratings.pair_weights)."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.arena import ratings
from app.arena import service as arena
from app.models import (
    Battle,
    CampaignStatus,
    ComparisonTask,
    Completion,
    Prompt,
    TaskCandidate,
)
from app.prompts.store import completion_hash, task_key
from ml.limits import INT32_MAX, replace_nul
from workers.context import JobContext
from workers.jobs.generate import add_completion, generator_for
from workers.jobs.training import JobParamError

PromptRow = tuple[int, str, list, list]


def pick_prompts(session: Session, n: int) -> list[PromptRow]:
    """n prompts, least battled first (random among equals)."""
    used = (
        select(ComparisonTask.prompt_id, func.count().label("n"))
        .join(Battle, Battle.task_id == ComparisonTask.id)
        .group_by(ComparisonTask.prompt_id)
        .subquery()
    )
    rows = session.execute(
        select(Prompt.id, Prompt.content_hash, Prompt.messages, Prompt.tags)
        .outerjoin(used, used.c.prompt_id == Prompt.id)
        .order_by(func.coalesce(used.c.n, 0), func.random())
        .limit(n)
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def _completion(session: Session, pid: int, text: str, vid: int, vname: str, gp: dict) -> int:
    h = completion_hash(text, f"policy:{vname}")
    found = session.scalar(
        select(Completion.id).where(Completion.prompt_id == pid, Completion.content_hash == h)
    )
    if found is not None:
        return found
    return add_completion(session, pid, h, text, vid, vname, gp)


def write_battle(
    session: Session,
    prompt: PromptRow,
    a: tuple[str, int, str],
    b: tuple[str, int, str],
    campaign_id: int,
    gp: dict[str, Any],
    required: int,
    run_id: int | None,
    rng: random.Random,
) -> int | None:
    """Store one battle (task + candidates + battles row); None when the answers coincide."""
    pid, phash, _messages, tags = prompt
    ta, tb = (replace_nul(x[0]).strip() for x in (a, b))
    if not ta or not tb or ta == tb:
        return None
    ha, hb = completion_hash(ta, f"policy:{a[2]}"), completion_hash(tb, f"policy:{b[2]}")
    key = task_key(phash, [ha, hb])
    if session.scalar(select(ComparisonTask.id).where(ComparisonTask.dedupe_key == key)):
        return None
    ca = _completion(session, pid, ta, a[1], a[2], gp)
    cb = _completion(session, pid, tb, b[1], b[2], gp)
    task = ComparisonTask(
        prompt_id=pid,
        dedupe_key=key,
        required_judgments=required,
        tags=list(tags or []) + ["generated"],  # as any generated task: nothing tells a battle
        run_id=run_id,
        selection_method="battle",
        priority=1.0,
    )
    session.add(task)
    session.flush()
    order = [ca, cb]
    rng.shuffle(order)
    session.add_all(
        TaskCandidate(task_id=task.id, position=i, completion_id=c) for i, c in enumerate(order)
    )
    session.add(
        Battle(
            campaign_id=campaign_id,
            task_id=task.id,
            model_a=a[2],
            model_b=b[2],
            version_a_id=a[1],
            version_b_id=b[1],
            completion_a_id=ca,
            completion_b_id=cb,
        )
    )
    session.flush()
    return task.id


def run(ctx: JobContext) -> dict[str, Any]:
    """Generate `battles` battles for campaign `campaign_id`."""
    from ml.generate import GenerationParams

    s, p = ctx.settings, ctx.params
    try:
        cid = int(p["campaign_id"])
        n = int(p.get("battles") or s.arena_open_battles)
    except (KeyError, TypeError, ValueError):
        raise JobParamError("battle runs need an integer campaign_id (and battles)") from None
    if not 1 <= n <= 1000:
        raise JobParamError("battles must be between 1 and 1000")
    seed = int(p["seed"]) if p.get("seed") is not None else random.randrange(INT32_MAX)
    rng = random.Random(seed)

    def given(key: str, default: Any) -> Any:
        return default if p.get(key) is None else p[key]

    max_new_tokens = int(given("max_new_tokens", s.max_new_tokens))
    temperature = float(given("temperature", s.temperature))
    top_p = float(given("top_p", s.top_p))
    gp = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
    with ctx.session() as session:
        try:
            c = arena.get_campaign(session, cid)
        except arena.CampaignNotFound as e:
            raise JobParamError(str(e)) from None
        if c.status != CampaignStatus.active:
            return {"battles_created": 0, "campaign_id": cid, "note": f"campaign {c.status.value}"}
        versions = [arena.registry.get_version(session, v) for v in c.version_ids]
        info = {v.version: (v.id, v.path) for v in versions}
        board = ratings.leaderboard(arena.outcomes(session, cid), rounds=100, seed=seed)
        prompts = pick_prompts(session, n)
    if not prompts:
        raise JobParamError("no prompts in the database; import some first")
    weights = ratings.pair_weights(list(info), board)
    pairs = rng.choices(list(weights), weights=list(weights.values()), k=len(prompts))
    plan = [
        (pr, *((x, y) if rng.random() < 0.5 else (y, x)))
        for pr, (x, y) in zip(prompts, pairs, strict=True)
    ]
    ctx.log(f"campaign {cid}: {len(plan)} battles among {list(info)}, seed {seed}")
    answers: dict[tuple[int, str], str] = {}
    names = list(info)
    ctx.progress(0, len(names), {"battles_created": 0})
    for vi, name in enumerate(names):
        ctx.check_stop()
        mine = [pr for pr, a, b in plan if name in (a, b)]
        if mine:
            gen = generator_for(info[name][1], s, name)
            params = GenerationParams(
                max_new_tokens, temperature, top_p, seed=seed + 7919 * (vi + 1)
            )
            texts = gen.generate([list(pr[2]) for pr in mine], 1, params)
            for pr, outs in zip(mine, texts, strict=True):
                answers[(pr[0], name)] = outs[0] if outs else ""
        ctx.progress(vi + 1, len(names), {})
    created = 0
    with ctx.session() as session:
        if arena.get_campaign(session, cid).status != CampaignStatus.active:
            return {"battles_created": 0, "campaign_id": cid, "note": "campaign stopped meanwhile"}
        for pr, a, b in plan:
            ra = (answers[(pr[0], a)], info[a][0], a)
            rb = (answers[(pr[0], b)], info[b][0], b)
            gpp = {**gp, "seed": seed, "run_id": ctx.run_id, "campaign_id": cid}
            if write_battle(session, pr, ra, rb, cid, gpp, s.default_required_judgments,
                            ctx.run_id, rng) is not None:  # fmt: skip
                created += 1
    ctx.progress(len(names), len(names), {"battles_created": created})
    return {
        "battles_created": created,
        "battles_skipped": len(plan) - created,
        "campaign_id": cid,
        "seed": seed,
        "pairs": {f"{a} vs {b}": round(w, 3) for (a, b), w in weights.items()},
    }
