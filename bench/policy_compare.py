"""Which policy algorithm aligns best per CPU-second, on the tiny model (a scaled-down stand-in
for the issue's SmolLM2 / 30-minutes-each comparison, which this 2-core machine cannot run).

    python bench/policy_compare.py [--budget 45] [--algorithms ppo,rloo,grpo,dpo]

Synthetic preferences (polite replies beat rude ones). Reward model A is trained on one half of
the pairs and is what ppo/rloo/grpo optimise; reward model B is trained on the disjoint other
half and grades every result, so no method is graded by the model it optimised. Each algorithm
runs in its own process (for its peak RSS): 2- and 10-step runs measure the marginal CPU seconds
per step (model loading is a fixed cost outside the budget), then a run sized to the budget;
the result is scored by the gate with reward model B (16
held-out prompts x 4 samples, bootstrap 95% interval of the gain) and its KL to the start.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HELD = 16


def pairs(seed: int, n: int) -> list[dict]:
    from ml.tiny import PROMPTS, REPLIES

    polite = [
        r for r in REPLIES if any(w in r for w in ("hank", "lease", "Sure", "course", "glad"))
    ]
    rude = [r for r in REPLIES if r not in polite]
    rng = random.Random(seed)
    return [
        {
            "prompt": [
                {"role": "user", "content": f"{rng.choice(PROMPTS)} (#{rng.randrange(99)})"}
            ],
            "chosen": [{"role": "assistant", "content": rng.choice(polite)}],
            "rejected": [{"role": "assistant", "content": rng.choice(rude)}],
        }
        for _ in range(n)
    ]


def prompts(seed: int, n: int) -> list:
    from ml.tiny import PROMPTS

    return [
        [{"role": "user", "content": f"{PROMPTS[i % len(PROMPTS)]} [{seed}-{i}]"}] for i in range(n)
    ]


def setup(work: Path) -> None:
    from ml.reward import RewardRunConfig, train_reward
    from ml.tiny import build_tiny_policy

    build_tiny_policy(work / "policy")
    cfg = RewardRunConfig(learning_rate=1e-3, num_train_epochs=2)
    train_reward(work / "policy", pairs(1, 96), pairs(11, 16), work / "rm_a", cfg)
    train_reward(work / "policy", pairs(2, 96), pairs(12, 16), work / "rm_b", cfg)


def params(algorithm: str, steps: int) -> dict:
    base = {"algorithm": algorithm, "learning_rate": 5e-4, "seed": 0, "batch_size": 8}
    if algorithm == "ppo":
        return {**base, "num_ppo_steps": steps, "response_length": 16, "num_ppo_epochs": 2}
    if algorithm in ("rloo", "grpo"):
        return {**base, "max_steps": steps, "num_generations": 4, "max_new_tokens": 16}
    return {**base, "num_train_epochs": max(steps * 8 / 96, 0.05)}


def one(algorithm: str, work: Path, budget: float) -> dict:
    import torch

    from ml.policy import Callbacks, PolicyData, train
    from ml.policy.gate import GateInputs, evaluate
    from ml.policy.params import parse_params

    torch.set_num_threads(1)
    train_prompts, heldout = prompts(0, 48), prompts(1, HELD)

    def run(steps: int, out: Path) -> tuple[float, dict]:
        data = PolicyData(work / "policy", out, work / "rm_a", train_prompts, heldout, pairs(3, 96))
        c0 = time.process_time()
        res = train(parse_params(params(algorithm, steps)), data, Callbacks())
        return time.process_time() - c0, res.metrics

    # marginal CPU per step from two short runs after a warm-up (imports, first-call costs);
    # loading models is a fixed cost, not budget
    run(2, work / f"warm-{algorithm}")
    short, _ = run(2, work / f"cal2-{algorithm}")
    long, _ = run(10, work / f"cal10-{algorithm}")
    per_step = max((long - short) / 8, 1e-3)
    steps = max(2, int(budget / per_step))
    cpu, metrics = run(steps, work / f"out-{algorithm}")
    gate = evaluate(
        work / "policy",
        work / f"out-{algorithm}",
        work / "rm_b",
        GateInputs(heldout, kl_max=1e9, samples_per_prompt=4, max_new_tokens=16, temperature=0.7),
    )
    return {
        "algorithm": algorithm,
        "steps": steps,
        "train_cpu_s": round(cpu, 1),
        "cpu_per_step": round(per_step, 3),
        "gain": gate.gain,
        "reward_before": gate.reward_before,
        "reward_after": gate.reward_after,
        "kl": gate.kl,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=45.0, help="training CPU seconds each")
    ap.add_argument("--algorithms", default="ppo,rloo,grpo,dpo")
    ap.add_argument("--one")
    ap.add_argument("--work", type=Path)
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(args.one, args.work, args.budget)), flush=True)
        return
    work = Path(tempfile.mkdtemp(prefix="prefloop-compare-"))
    setup(work)
    print(f"budget {args.budget:g} CPU s of training each, graded by a second reward model")
    cols = "algorithm | cpu s/step | steps | train cpu s | reward before -> after | gain [95% CI]"
    print(f"| {cols} | KL | RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for algorithm in args.algorithms.split(","):
        cmd = [sys.executable, __file__, "--one", algorithm, "--work", str(work)]
        out = subprocess.run(
            [*cmd, "--budget", str(args.budget)], capture_output=True, text=True, cwd=ROOT
        )
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"| {algorithm} | failed: {out.stderr[-300:]!r} |")
            continue
        r = json.loads(line[7:])
        g = r["gain"]
        print(
            f"| {algorithm} | {r['cpu_per_step']} | {r['steps']} | {r['train_cpu_s']} | "
            f"{r['reward_before']:.3f} -> "
            f"{r['reward_after']:.3f} | {g['mean']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}] | "
            f"{r['kl']:.2f} | {r['peak_rss_mb']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
