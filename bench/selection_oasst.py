"""Uncertainty vs random selection of what gets labeled, on real OpenAssistant rankings.

Pool-based simulation: every ranked node of ../shared/data/oasst_en_100_tree.jsonl is a prompt
with 2-9 replies whose human ranking is the truth. Prompts are split 70/30 (per seed) into a
labeling pool and an evaluation set. Each round the current reward model picks one pair per pool
prompt the way the generate job does (ml.selection.choose: the least certain pair, a random one
with probability --explore) and the queue serves the most uncertain first (ml.selection
.uncertainty); "random" pairs a random prompt's random replies, as without selection. A simulated
labeler answers by the truth and flips 15% of answers. The first batch is random for both (no
reward model yet). After each batch the reward model is refit on everything labeled so far.

The reward model is a Bradley-Terry linear head on hashed word uni/bigram features of the reply
(logistic regression on feature differences, L2), refit in milliseconds, so 3 budgets x 2
methods x seeds fit in a minute of CPU. It stands in for the transformer reward model: selection
only needs a scorer that improves with labels; absolute accuracies are this model's, not TRL's.
Metric: pairwise accuracy on every differently-ranked pair of the held-out prompts.

    python bench/selection_oasst.py --seeds 5
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import statistics
import time
import zlib
from pathlib import Path

import numpy as np
import torch

from app.labeled_import.oasst import parse_tree
from ml.selection import choose, uncertainty

_ROOT = Path(__file__).resolve().parents[1]
DATA = next(
    (d / "shared/data/oasst_en_100_tree.jsonl" for d in (_ROOT.parent, _ROOT.parent.parent)
     if (d / "shared/data/oasst_en_100_tree.jsonl").is_file()),
    _ROOT.parent / "shared/data/oasst_en_100_tree.jsonl",
)  # fmt: skip
DIM = 4096
BATCH = 20
BUDGETS = (100, 200, 400)
T975 = {4: 2.776, 9: 2.262, 19: 2.093}


def features(text: str) -> np.ndarray:
    words = re.findall(r"[a-z0-9']+|[^\sa-z0-9]", text.lower())
    v = np.zeros(DIM, dtype=np.float32)
    for tok in words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]:
        v[zlib.crc32(tok.encode()) % DIM] += 1.0
    v = np.log1p(v)
    v /= max(float(np.linalg.norm(v)), 1e-6)
    extra = np.array([math.log1p(len(text)) / 8, text.count("\n") / 20], dtype=np.float32)
    return np.concatenate([v, extra])


def load() -> list[tuple[np.ndarray, list[int]]]:
    """(reply features, rank group of each reply) per ranked node."""
    out = []
    for n, line in enumerate(DATA.read_text().splitlines(), 1):
        for r in parse_tree(n, json.loads(line)):
            rank = [0] * len(r.completions)
            for g, group in enumerate(r.ranking):
                for i in group:
                    rank[i] = g
            out.append((np.stack([features(t) for t in r.completions]), rank))
    return out


def fit(diffs: list[np.ndarray], l2: float = 1e-2) -> torch.Tensor:
    """Bradley-Terry weights from (winner - loser) feature differences."""
    x = torch.tensor(np.stack(diffs))
    w = torch.zeros(x.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.softplus(-(x @ w)).mean() + l2 * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def accuracy(w: torch.Tensor | None, prompts: list) -> float:
    hits, n = 0.0, 0
    for feats, rank in prompts:
        r = (torch.tensor(feats) @ w).tolist() if w is not None else [0.0] * len(rank)
        for i in range(len(rank)):
            for j in range(len(rank)):
                if rank[i] < rank[j]:
                    n += 1
                    hits += 1.0 if r[i] > r[j] else 0.5 if r[i] == r[j] else 0.0
    return hits / n


def simulate(prompts: list, method: str, seed: int, explore: float, noise: float) -> dict:
    rng = random.Random(seed)
    order = list(range(len(prompts)))
    rng.shuffle(order)
    cut = int(0.7 * len(order))
    pool = [prompts[i] for i in order[:cut]]
    held = [prompts[i] for i in order[cut:]]
    open_pairs = {
        p: {(i, j) for i in range(len(rank)) for j in range(i + 1, len(rank)) if rank[i] != rank[j]}
        for p, (_, rank) in enumerate(pool)
    }
    diffs: list[np.ndarray] = []
    w: torch.Tensor | None = None
    members: list[torch.Tensor] = []
    acc: dict[int, float] = {}
    while len(diffs) < max(BUDGETS) and any(open_pairs.values()):
        candidates = [p for p, pairs in open_pairs.items() if pairs]
        if method == "random" or w is None:
            picks = []
            for _ in range(BATCH):
                live = [p for p in candidates if open_pairs[p] - {q for pp, q in picks if pp == p}]
                if not live:
                    break
                p = rng.choice(live)
                left = sorted(open_pairs[p] - {q for pp, q in picks if pp == p})
                picks.append((p, rng.choice(left)))
        elif method == "ensemble":
            scored = []
            for p in candidates:
                feats = torch.tensor(pool[p][0])
                rs = [(feats @ m).tolist() for m in members]
                pairs = sorted(open_pairs[p])
                if rng.random() < explore:
                    pair = rng.choice(pairs)
                else:
                    pair = max(pairs, key=lambda q: (disagreement(rs, q), -q[0], -q[1]))
                scored.append((disagreement(rs, pair), rng.random(), p, pair))
            scored.sort(reverse=True)
            picks = [(p, pair) for _, _, p, pair in scored[:BATCH]]
        else:
            scored = []
            for p in candidates:
                r = (torch.tensor(pool[p][0]) @ w).tolist()
                c = choose(r, 2, explore, rng)
                pair = tuple(c.indices)
                if pair not in open_pairs[p]:  # labeled already: the least certain open pair
                    pair = min(open_pairs[p], key=lambda q: (abs(r[q[0]] - r[q[1]]), q))
                scored.append((uncertainty(abs(r[pair[0]] - r[pair[1]])), rng.random(), p, pair))
            scored.sort(reverse=True)  # the queue: most uncertain first
            picks = [(p, pair) for _, _, p, pair in scored[:BATCH]]
        for p, (i, j) in picks:
            open_pairs[p].discard((i, j))
            feats, rank = pool[p]
            better, worse = (i, j) if rank[i] < rank[j] else (j, i)
            if rng.random() < noise:
                better, worse = worse, better
            diffs.append(feats[better] - feats[worse])
            if len(diffs) in BUDGETS:
                acc[len(diffs)] = accuracy(fit(diffs), held)
        w = fit(diffs)
        if method == "ensemble":  # 5 bootstrap refits: where they disagree is what to label
            members = [fit([diffs[rng.randrange(len(diffs))] for _ in diffs]) for _ in range(5)]
    return acc


def disagreement(rs: list[list[float]], pair: tuple[int, int]) -> float:
    """1 when the ensemble splits evenly on which reply is better, 0 when it agrees."""
    votes = [1.0 if r[pair[0]] > r[pair[1]] else -1.0 for r in rs]
    return 1.0 - abs(sum(votes)) / len(votes)


def interval(xs: list[float]) -> tuple[float, float]:
    m = statistics.mean(xs)
    if len(xs) < 2:
        return m, 0.0
    t = T975.get(len(xs) - 1, 1.96)
    return m, t * statistics.stdev(xs) / math.sqrt(len(xs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--explore", type=float, default=0.2)
    ap.add_argument("--noise", type=float, default=0.15)
    ap.add_argument("--ensemble", action="store_true", help="also: 5-model bootstrap disagreement")
    args = ap.parse_args()
    if not DATA.is_file():
        raise SystemExit(f"{DATA} is missing (the benchmark needs the OpenAssistant sample)")
    torch.manual_seed(0)
    started = time.process_time()
    prompts = load()
    n_pairs = sum(len(r) * (len(r) - 1) // 2 for _, r in prompts)
    methods = ("random", "uncertainty", "ensemble") if args.ensemble else ("random", "uncertainty")
    res = {m: [simulate(prompts, m, s, args.explore, args.noise) for s in range(args.seeds)]
           for m in methods}  # fmt: skip
    cpu = time.process_time() - started
    print(f"{len(prompts)} ranked prompts, {n_pairs} pairs; {args.seeds} seeds, explore "
          f"{args.explore}, noise {args.noise}; {cpu:.0f} s CPU")  # fmt: skip
    others = methods[1:]
    print("| judgments | random acc | " + " | ".join(f"{m} acc | {m} - random" for m in others)
          + " |")  # fmt: skip
    print("|---|---|" + "---|---|" * len(others))
    for b in BUDGETS:
        r = [x[b] for x in res["random"] if b in x]
        mr, hr = interval(r)
        cells = [f"{mr:.3f} ± {hr:.3f}"]
        for m in others:
            u = [x[b] for x in res[m] if b in x]
            (mu, hu), (md, hd) = interval(u), interval([y - x for x, y in zip(r, u, strict=True)])
            cells += [f"{mu:.3f} ± {hu:.3f}", f"{100 * md:+.1f} ± {100 * hd:.1f} points"]
        print(f"| {b} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
