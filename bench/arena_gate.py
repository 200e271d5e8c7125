"""The arena promotion gate on simulated humans: how many judged battles it needs to promote a
candidate people prefer 60/40, and that it never promotes the worse one (40/60).

Each trial draws battles one at a time (seeded): the candidate wins with probability p_win, ties
with probability `ties` (half a win each, as the app counts them), else loses. After every battle
the gate (app.arena.ratings.gate: Wilson 95% interval of the win rate, promote when the lower
bound is above 0.5, reject when the upper bound is below 0.5, never before --min-battles, give up
undecided at --max-battles) is asked for a verdict, exactly as the worker asks it.

    python bench/arena_gate.py --trials 100
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from app.arena.ratings import PairRate, gate, wilson


def trial(p_win: float, ties: float, seed: int, lo_n: int, hi_n: int) -> tuple[str, int]:
    rng = random.Random(seed)
    n, score = 0, 0.0
    while True:
        r = rng.random()
        score += 0.5 if r < ties else 1.0 if r < ties + (1 - ties) * p_win else 0.0
        n += 1
        lo, hi = wilson(score, n)
        verdict = gate(PairRate("cand", "active", n, score, score / n, lo, hi), lo_n, hi_n)
        if verdict != "wait":
            return verdict, n


VERDICTS = ("promote", "reject", "undecided")


def pct(xs: list[int], q: float) -> int:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--min-battles", type=int, default=50)
    ap.add_argument("--max-battles", type=int, default=1000)
    args = ap.parse_args()
    started = time.process_time()
    print("| candidate preferred | ties | promoted | rejected | undecided | battles to decide: "
          "median (p10-p90) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for p_win in (0.6, 0.4, 0.5):
        for ties in (0.0, 0.2):
            res = [trial(p_win, ties, s, args.min_battles, args.max_battles)
                   for s in range(args.trials)]  # fmt: skip
            count = {
                v: sum(1 for r in res if r[0] == v) for v in ("promote", "reject", "undecided")
            }
            decided = [n for v, n in res if v != "undecided"]
            print(f"| {p_win:.0%} of decisive battles | {ties:.0%} | {count['promote']} | "
                  f"{count['reject']} | {count['undecided']} | {statistics.median(decided):.0f} "
                  f"({pct(decided, 0.1)}-{pct(decided, 0.9)}) |")  # fmt: skip
    print(
        f"\n{args.trials} seeded trials per row, min {args.min_battles} battles, "
        f"{time.process_time() - started:.1f} s CPU"
    )


if __name__ == "__main__":
    main()
