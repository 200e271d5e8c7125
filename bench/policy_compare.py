"""Which policy algorithm aligns best per CPU-second, under an equal CPU budget each.

    python bench/policy_compare.py [--budget 45] [--algorithms ppo,rloo,grpo,dpo]
    python bench/policy_compare.py --model smollm2 --budget 600

Reward model A is what ppo/rloo/grpo optimise (and DPO trains on A's pairs); reward model B is
trained on disjoint pairs and grades every result, so no method is graded by the model it
optimised. Each algorithm runs in its own process (for its peak RSS): a short calibration run
measures the marginal CPU seconds per step (model loading is a fixed cost outside the budget),
then a run sized to the budget; the result is scored by the gate with reward model B (16
held-out prompts x 4 samples, bootstrap 95% interval of the gain) and its KL to the start.

``--model tiny`` (default): the 2-layer test policy and synthetic preferences (polite replies
beat rude ones). ``--model smollm2``: the embedded SmolLM2-135M policy and the OpenAssistant
rankings in ../shared/data, split by prompt into A (40%), B (40%) and held out (20%); reward
models A and B are SmolLM2 with a frozen backbone and a fitted score head (bench/probe.py),
because fine-tuning two reward models would eat the whole CPU budget here.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
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
TOKENS = {"tiny": 16, "smollm2": 48}  # new tokens per completion, in training and grading
TEMPERATURE = 0.7  # grading


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


def oasst_split() -> dict[str, list[dict]]:
    """OpenAssistant ordered pairs by prompt (content hash): a (40%), b (40%), held (20%)."""
    import hashlib

    from app.labeled_import.parsers import parse

    data = next(
        p / "shared" / "data" / "oasst_en_100_tree.jsonl"
        for p in ROOT.parents
        if (p / "shared" / "data" / "oasst_en_100_tree.jsonl").is_file()
    )
    _, records = parse(data.read_bytes(), "oasst")
    split: dict[str, list[dict]] = {"a": [], "b": [], "held": []}
    for rec in records:
        digest = hashlib.sha256(json.dumps(rec.messages, sort_keys=True).encode()).hexdigest()
        part = ("held", "a", "a", "b", "b")[int(digest, 16) % 5]
        for hi, group in enumerate(rec.ranking):
            for lower in rec.ranking[hi + 1 :]:
                for i in group:
                    for j in lower:
                        split[part].append({
                            "prompt": rec.messages,
                            "chosen": [{"role": "assistant", "content": rec.completions[i]}],
                            "rejected": [{"role": "assistant", "content": rec.completions[j]}],
                        })  # fmt: skip
    return split


def short_prompts(rows: list[dict], limit: int, tokens: int = 192) -> list:
    """Distinct prompts of ``rows`` whose templated length is at most ``tokens`` (CPU budget)."""
    from bench.probe import smollm2_dir
    from ml.store import load_tokenizer

    tok = load_tokenizer(smollm2_dir())
    seen: dict[str, list] = {}
    for row in rows:
        key = json.dumps(row["prompt"], sort_keys=True)
        enc = tok.apply_chat_template(row["prompt"], add_generation_prompt=True, return_dict=True)
        if key not in seen and len(enc["input_ids"]) <= tokens:
            seen[key] = row["prompt"]
    return [seen[k] for k in sorted(seen)][:limit]


def setup_smollm2(work: Path) -> None:
    """Reward models A and B (frozen SmolLM2 + fitted head) and the prompt/pair file."""
    from bench.probe import accuracy, fit_head, pair_features, save_reward_model, smollm2_dir

    base = smollm2_dir()
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "policy").exists():
        (work / "policy").symlink_to(base)
    split = oasst_split()
    data = {
        "train_prompts": short_prompts(split["a"], 10_000),
        "heldout": short_prompts(split["held"], HELD),
        "train_pairs": split["a"],
        "eval_pairs": split["held"],
    }
    (work / "data.json").write_text(json.dumps(data))  # dpo needs no reward model: it can start
    held_c, held_r = pair_features(base, split["held"], 256)
    for part in ("a", "b"):
        c, r = pair_features(base, split[part], 256)
        w = fit_head(c, r)
        save_reward_model(base, w, work / f"rm_{part}")
        print(f"reward model {part.upper()}: {len(split[part])} pairs, held-out accuracy "
              f"{accuracy(w, held_c, held_r):.3f} on {len(split['held'])}", flush=True)  # fmt: skip


def params(algorithm: str, steps: int, model: str = "tiny", n_pairs: int = 96) -> dict:
    lr, tokens = (5e-4 if model == "tiny" else 1e-5), TOKENS[model]
    base = {"algorithm": algorithm, "learning_rate": lr, "seed": 0, "batch_size": 8}
    if algorithm == "ppo":
        return {**base, "num_ppo_steps": steps, "response_length": tokens, "num_ppo_epochs": 2}
    if algorithm in ("rloo", "grpo"):
        return {**base, "max_steps": steps, "num_generations": 4, "max_new_tokens": tokens}
    # SmolLM2: 8 pairs per step as micro-batches of 2 (at 512 tokens one batch of 8 pairs peaked
    # at ~17 GB, more than this machine can give beside another run)
    extra = {} if model == "tiny" else {"max_length": 512, "batch_size": 2,
                                         "gradient_accumulation_steps": 4}  # fmt: skip
    return {**base, **extra, "num_train_epochs": max(steps * 8 / n_pairs, 0.01)}


def one(algorithm: str, work: Path, budget: float, model: str, threads: int) -> dict:
    import torch

    from ml.policy import Callbacks, PolicyData, train
    from ml.policy.gate import GateInputs, evaluate
    from ml.policy.params import parse_params

    torch.set_num_threads(threads)
    if model == "tiny":
        train_prompts, heldout = prompts(0, 48), prompts(1, HELD)
        train_pairs, eval_pairs = pairs(3, 96), []
    else:
        d = json.loads((work / "data.json").read_text())
        train_prompts, heldout = d["train_prompts"], d["heldout"]
        train_pairs, eval_pairs = d["train_pairs"], d["eval_pairs"]
    stamps: list[float] = []

    def progress(step: int, total: int, logs: dict) -> None:
        if not logs:  # a step ended
            stamps.append(time.process_time())

    def run(steps: int, out: Path) -> tuple[float, dict]:
        shutil.rmtree(out, ignore_errors=True)  # scratch of an interrupted earlier invocation
        data = PolicyData(work / "policy", out, work / "rm_a", train_prompts, heldout,
                          train_pairs, eval_pairs)  # fmt: skip
        stamps.clear()
        c0 = time.process_time()
        cfg = parse_params(params(algorithm, steps, model, len(train_pairs)))
        res = train(cfg, data, Callbacks(progress))
        return time.process_time() - c0, res.metrics

    if model == "tiny":
        # marginal CPU per step from two short runs after a warm-up (imports, first-call
        # costs); loading models is a fixed cost, not budget
        run(2, work / f"warm-{algorithm}")
        short, _ = run(2, work / f"cal2-{algorithm}")
        long, _ = run(10, work / f"cal10-{algorithm}")
        per_step = max((long - short) / 8, 1e-3)
    else:  # a 3-step run: the CPU between the ends of steps 1 and 3 (too dear to repeat)
        run(3, work / f"cal-{algorithm}")
        per_step = max((stamps[-1] - stamps[0]) / (len(stamps) - 1), 1e-3)
    steps = max(2, int(budget / per_step))
    cpu, metrics = run(steps, work / f"out-{algorithm}")
    gate = evaluate(
        work / "policy",
        work / f"out-{algorithm}",
        work / "rm_b",
        GateInputs(
            heldout,
            kl_max=1e9,
            samples_per_prompt=4,
            max_new_tokens=TOKENS[model],
            temperature=TEMPERATURE,
        ),
    )
    return {
        "algorithm": algorithm,
        "steps": steps,
        "train_cpu_s": round(cpu, 1),
        "train_steps_cpu_s": round(stamps[-1] - stamps[0], 1) if len(stamps) > 1 else None,
        "cpu_per_step": round(per_step, 3),
        "gain": gate.gain,
        "reward_before": gate.reward_before,
        "reward_after": gate.reward_after,
        "kl": gate.kl,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def grade(work: Path, algorithms: list[str], samples: int, limit: int, threads: int) -> None:
    """Regrade the saved ``out-<algorithm>`` policies with reward model B on more samples.

    The starting policy is sampled once and shared (every algorithm is paired with the same
    draws: prompt i uses seed i before and after); the interval is over prompts, as the gate's."""
    from statistics import fmean as mean

    import torch

    from ml.policy.gate import _load_causal, _load_reward, bootstrap, kl_per_prompt, sample, score
    from ml.store import load_tokenizer

    torch.set_num_threads(threads)
    d = json.loads((work / "data.json").read_text())
    heldout = short_prompts(d["eval_pairs"], limit)
    tok = load_tokenizer(work / "policy", padding_side="left")
    rm, rm_tok = _load_reward(work / "rm_b"), load_tokenizer(work / "rm_b", padding_side="right")
    start = _load_causal(work / "policy")

    def draw(model: object) -> tuple[list, list[float]]:
        sampled = sample(model, tok, heldout, samples, TOKENS["smollm2"], TEMPERATURE, 0)
        return sampled, [mean(x) for x in score(rm, rm_tok, heldout, sampled)]

    _, before = draw(start)
    print(f"{len(heldout)} held-out prompts x {samples}; reward B before {mean(before):.3f}")
    print("| algorithm | reward (B) before -> after | gain [95% CI] | KL |\n|---|---|---|---|")
    for algorithm in algorithms:
        new = _load_causal(work / f"out-{algorithm}")
        sampled, after = draw(new)
        kl = mean(kl_per_prompt(new, start, sampled))
        g = bootstrap([a - b for a, b in zip(after, before, strict=True)])
        print(f"| {algorithm} | {mean(before):.3f} -> {mean(after):.3f} | {g.mean:+.3f} "
              f"[{g.low:+.3f}, {g.high:+.3f}] | {kl:.3f} |", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=45.0, help="training CPU seconds each")
    ap.add_argument("--algorithms", default="ppo,rloo,grpo,dpo")
    ap.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--one")
    ap.add_argument("--grade", action="store_true", help="regrade saved results (smollm2)")
    ap.add_argument("--samples", type=int, default=16, help="--grade: samples per prompt")
    ap.add_argument("--prompts", type=int, default=HELD, help="--grade: held-out prompts")
    ap.add_argument("--work", type=Path)
    args = ap.parse_args()
    if args.grade:
        if args.work is None or not (args.work / "data.json").is_file():
            ap.error("--grade needs --work DIR of an earlier --model smollm2 comparison")
        grade(args.work, args.algorithms.split(","), args.samples, args.prompts, args.threads)
        return
    if args.one:
        r = one(args.one, args.work, args.budget, args.model, args.threads)
        print("RESULT " + json.dumps(r), flush=True)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="prefloop-compare-"))
    if not (work / "rm_b").exists():
        (setup if args.model == "tiny" else setup_smollm2)(work)
    print(f"budget {args.budget:g} CPU s of training each, graded by a second reward model")
    cols = "algorithm | cpu s/step | steps | train cpu s | reward before -> after | gain [95% CI]"
    print(f"| {cols} | KL | RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for algorithm in args.algorithms.split(","):
        cmd = [sys.executable, __file__, "--one", algorithm, "--work", str(work),
               "--model", args.model, "--threads", str(args.threads)]  # fmt: skip
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
