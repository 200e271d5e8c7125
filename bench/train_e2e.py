"""End-to-end training loop timing: judgments -> reward run -> PPO run -> new version serving.

    python bench/train_e2e.py                 # SmolLM2-135M (embedded GGUF), CPU
    python bench/train_e2e.py --model tiny    # the 2-layer test model: checks the script in seconds

Everything goes through the product: a fresh SQLite database and model store, the policy
bootstrapped as the worker does it, synthetic preferences stored as judgments (K=4 rankings,
helpful replies tied above rude ones: 4 pairs each), the real worker loop processing a queued
`reward` run and then a queued `ppo` run, and the OpenAI-compatible endpoint answering with the
new policy version. Prints one timing per stage and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOPICS = [
    "my bike", "rice", "a job interview", "my garden", "a cold", "learning French",
    "a birthday party", "my laptop", "saving money", "a long flight", "sleeping better",
    "a cover letter", "my cat", "a rainy weekend", "public speaking", "a slow phone",
    "baking bread", "a new city", "studying for exams", "a broken zipper",
]  # fmt: skip
ASKS = [
    "Can you help me with {t}?", "Any tips about {t}?", "What should I know about {t}?",
    "I need advice on {t}.", "How do I deal with {t}?",
]  # fmt: skip
GOOD = [
    "Of course, happy to help with {t}. Start with one small step and check how it goes.",
    "Sure! For {t}, make a short plan, ask someone experienced, and take it one step at a time.",
    "Thanks for asking. With {t}, patience helps: try the simplest fix first, then adjust.",
    "Great question. For {t}, I would begin with the basics and practise a little every day.",
]
BAD = [
    "Figure out {t} yourself.",
    "Nobody cares about {t}. Go away.",
    "That is a stupid question about {t}.",
    "Whatever. Ask someone else about {t}.",
]


def setup_env(workdir: Path) -> None:
    os.environ.update(
        PREFLOOP_DATA_DIR=str(workdir / "data"),
        PREFLOOP_DATABASE_URL=f"sqlite:///{workdir / 'bench.db'}",
        PREFLOOP_ENV="test",
        PREFLOOP_SECRET_KEY="bench-secret-key-not-for-production",
        PREFLOOP_QUEUE_TARGET="0",
        PREFLOOP_SERVING_RELOAD_SECONDS="0",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        TRL_EXPERIMENTAL_SILENCE="1",
    )


def seed(n_tasks: int, rng: random.Random) -> tuple[int, int]:
    """Store n_tasks K=4 comparisons with one judgment each; returns (judgments, pairs)."""
    from sqlalchemy import select

    from app.db import session_scope
    from app.models import Completion, Judgment, TaskCandidate
    from app.prompts import parsing, store

    prompts = [a.format(t=t) for t in TOPICS for a in ASKS]
    rng.shuffle(prompts)
    lines, good_texts = [], set()
    for i in range(n_tasks):
        p = prompts[i % len(prompts)]
        topic = next(t for t in TOPICS if t in p)
        good = [g.format(t=topic) for g in rng.sample(GOOD, 2)]
        bad = [b.format(t=topic) for b in rng.sample(BAD, 2)]
        good_texts.update(good)
        lines.append(json.dumps({"prompt": p, "completions": good + bad}))
    records = parsing.parse(("\n".join(lines) + "\n").encode(), "comparisons", "jsonl")
    with session_scope() as s:
        _, task_ids = store.import_comparisons(s, records, 1)
        rows = s.execute(
            select(TaskCandidate.task_id, Completion.id, Completion.text)
            .join(Completion, Completion.id == TaskCandidate.completion_id)
            .where(TaskCandidate.task_id.in_(task_ids))
        ).all()
        by_task: dict[int, list[tuple[int, str]]] = {}
        for tid, cid, text in rows:
            by_task.setdefault(tid, []).append((cid, text))
        pairs = 0
        for n, tid in enumerate(sorted(set(task_ids))):
            good = [c for c, t in by_task[tid] if t in good_texts]
            bad = [c for c, t in by_task[tid] if t not in good_texts]
            s.add(Judgment(task_id=tid, source="bench", external_id=str(n), ranking=[good, bad]))
            pairs += len(good) * len(bad)
    return len(set(task_ids)), pairs


def run_queued(kind: str, params: dict) -> dict:
    """Queue a run and let the real worker loop process it; returns the finished run's fields."""
    from app.config import get_settings
    from app.db import session_scope
    from app.models import Run
    from app.runs.service import create_run
    from workers.runner import Worker

    with session_scope() as s:
        run_id = create_run(s, kind, params, None).id
    Worker(worker_id="bench", settings=get_settings(), fill_queue=False).tick()
    with session_scope() as s:
        run = s.get(Run, run_id)
        return {"status": run.status.value, "error": run.error, "metrics": run.metrics}


def registry_name(version_id: int) -> str:
    from app.db import session_scope
    from app.models_registry import service as registry

    with session_scope() as s:
        return registry.get_version(s, version_id).version


def serve_once() -> tuple[float, dict, str]:
    """Time the first /v1/chat/completions answer of a fresh web app (loads the active policy)."""
    from fastapi.testclient import TestClient

    from app.db import session_scope
    from app.main import create_app
    from app.models import ModelKind
    from app.models_registry import service as registry
    from app.users.service import create_token, create_user

    with session_scope() as s:
        if not s.scalar(select_user("bench-admin")):
            create_user(s, "bench-admin", "admin", "bench-password")
        _, token = create_token(s, "bench-admin", "bench")
        active = registry.active_version(s, ModelKind.policy)
        assert active is not None, "no active policy"
        name = active.version
    t = time.monotonic()
    with TestClient(create_app()) as client:
        r = client.post(
            "/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": "Any tips about my garden?"}],
                "max_tokens": 32,
                "temperature": 0,
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    seconds = time.monotonic() - t
    body = r.json()
    assert r.status_code == 200, body
    return seconds, body, name


def select_user(name: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from app.models import User

    return select(User.id).where(User.name == name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2", help="smollm2 (embedded GGUF) or tiny")
    ap.add_argument("--tasks", type=int, default=60, help="K=4 judgments (4 pairs each)")
    ap.add_argument("--rm-epochs", type=float, default=1.0)
    ap.add_argument("--rm-batch", type=int, default=8)
    ap.add_argument("--rm-lr", type=float, default=5e-5)
    ap.add_argument("--ppo-steps", type=int, default=4)
    ap.add_argument("--ppo-batch", type=int, default=4)
    ap.add_argument("--ppo-epochs", type=int, default=2)
    ap.add_argument("--ppo-lr", type=float, default=1e-5)
    ap.add_argument("--response-length", type=int, default=24)
    ap.add_argument("--heldout", type=int, default=8, help="held-out prompts (2 samples each)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the summary here")
    ap.add_argument("--workdir", type=Path, help="keep the database and model store here")
    ap.add_argument(
        "--serve-only", action="store_true", help="only time /v1 on --workdir's active policy"
    )
    args = ap.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="prefloop-e2e-"))
    workdir.mkdir(parents=True, exist_ok=True)
    setup_env(workdir)
    import torch

    torch.set_num_threads(args.threads)
    from app.config import get_settings
    from app.db import session_scope
    from app.models_registry import service as registry
    from app.ops.migrate import upgrade

    upgrade(os.environ["PREFLOOP_DATABASE_URL"])
    if args.serve_only:
        seconds, body, name = serve_once()
        print(f"{name}: first /v1 answer in {seconds:.1f}s (incl. load): {body['choices']}")
        return
    times: dict[str, float] = {}
    summary: dict = {"model": args.model, "threads": args.threads, "cpus": os.cpu_count()}

    t = time.monotonic()
    if args.model == "tiny":
        from ml.tiny import build_tiny_policy

        path = build_tiny_policy(workdir / "tiny-policy")
        with session_scope() as s:
            registry.activate(s, registry.register_version(s, "policy", path, base_model="tiny").id)
    else:
        from workers.bootstrap_policy import ensure_active_policy

        ensure_active_policy(get_settings(), log=print)
    times["policy bootstrap (GGUF -> store, once)"] = time.monotonic() - t

    t = time.monotonic()
    judgments, pairs = seed(args.tasks, random.Random(0))
    times["seed judgments"] = time.monotonic() - t
    summary.update(judgments=judgments, pairs=pairs)
    print(f"seeded {judgments} judgments = {pairs} pairs", flush=True)

    t = time.monotonic()
    rm = run_queued(
        "reward",
        {
            "num_train_epochs": args.rm_epochs,
            "batch_size": args.rm_batch,
            "learning_rate": args.rm_lr,
            "max_length": 512,
        },
    )
    times["reward run"] = time.monotonic() - t
    if rm["status"] != "succeeded":
        raise SystemExit(f"reward run {rm['status']}: {rm['error']}")
    m = rm["metrics"]
    summary["reward"] = {
        k: m.get(k)
        for k in ("pairs_train", "pairs_eval", "eval_accuracy", "eval_loss", "train_loss")
    }
    print(f"reward run: {summary['reward']} in {times['reward run']:.1f}s", flush=True)

    t = time.monotonic()
    ppo = run_queued(
        "ppo",
        {
            "num_ppo_steps": args.ppo_steps,
            "batch_size": args.ppo_batch,
            "num_ppo_epochs": args.ppo_epochs,
            "learning_rate": args.ppo_lr,
            "response_length": args.response_length,
            "eval_samples_per_prompt": 2,
            "max_heldout": args.heldout,
        },
    )
    times["ppo run"] = time.monotonic() - t
    if ppo["status"] != "succeeded":
        raise SystemExit(f"PPO run {ppo['status']}: {ppo['error']}")
    m = ppo["metrics"]
    ppo_keys = ("heldout_reward_before", "heldout_reward_after", "kl_to_ref", "promoted")
    summary["ppo"] = {k: m.get(k) for k in ppo_keys} | {"reason": m.get("promotion_reason")}
    print(f"PPO run: {summary['ppo']} in {times['ppo run']:.1f}s", flush=True)

    new_id = m["policy_version_new_id"]
    t = time.monotonic()
    if not m.get("promoted"):
        with session_scope() as s:  # what an admin would do on /admin/models
            registry.activate(s, new_id)
        summary["activated_by"] = "admin (not auto-promoted)"
    else:
        summary["activated_by"] = "auto-promotion"
    times["activate (verify + flip)"] = time.monotonic() - t

    seconds, body, name = serve_once()
    assert name == registry_name(new_id), "the new version is not the active one"
    times["first /v1 answer from the new version (incl. load)"] = seconds
    summary["served_model"] = body.get("model")
    summary["served_new_version"] = body.get("model") == name
    summary["sample"] = body["choices"][0]["message"]["content"][:200]
    summary["seconds"] = {k: round(v, 1) for k, v in times.items()}
    summary["seconds"]["total (judgments -> new version serving)"] = round(
        sum(v for k, v in times.items() if not k.startswith("policy bootstrap")), 1
    )
    print()
    for k, v in summary["seconds"].items():
        print(f"{k:<55} {v:>8.1f} s")
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
