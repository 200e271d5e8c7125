"""Overhead of prefloop's training wrappers over bare TRL scripts (same data, model, settings).

    python bench/train_overhead.py [--model PATH] [--repeats 3] [--threads 1]

Times, in one process and interleaved, (1) a bare ``trl.RewardTrainer`` script vs
``ml.reward.train_reward`` and (2) a bare ``trl.experimental.ppo.PPOTrainer`` script vs
``ml.ppo.train_ppo`` (without held-out prompts, i.e. the same work, and with them, which
adds the before/after held-out reward and KL estimates). Prints medians and ratios (target <= 1.1).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ml.ppo import PPORunConfig, ppo_config, tokenize_prompts, train_ppo  # noqa: E402
from ml.reward import RewardRunConfig, reward_config, train_reward  # noqa: E402
from ml.tiny import PROMPTS, build_tiny_policy  # noqa: E402

POLITE = ["Thank you for asking, I am happy to help.", "Sure, please let me explain it."]
RUDE = ["Go away, I do not care.", "Stop bothering me.", "Whatever, ask someone else."]


def preference_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "prompt": [{"role": "user", "content": rng.choice(PROMPTS)}],
            "chosen": [{"role": "assistant", "content": rng.choice(POLITE)}],
            "rejected": [{"role": "assistant", "content": rng.choice(RUDE)}],
        }
        for _ in range(n)
    ]


def bare_reward(base: Path, train: list, evals: list, out: Path, cfg: RewardRunConfig) -> None:
    """What a user would write with TRL alone: load, train, evaluate, save."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardTrainer

    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    model.config.pad_token_id = tok.pad_token_id
    with tempfile.TemporaryDirectory() as tmp:
        trainer = RewardTrainer(
            model=model,
            args=reward_config(cfg, tmp),
            train_dataset=Dataset.from_list(train),
            eval_dataset=Dataset.from_list(evals),
            processing_class=tok,
        )
        trainer.train()
        trainer.evaluate()
    model.save_pretrained(out)
    tok.save_pretrained(out)


def bare_ppo(policy: Path, reward: Path, prompts: list, out: Path, cfg: PPORunConfig) -> None:
    """Bare TRL PPO: four models, tokenized prompts, train, save."""
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )
    from trl.experimental.ppo import PPOTrainer

    tok = AutoTokenizer.from_pretrained(policy, padding_side="left")
    pol = AutoModelForCausalLM.from_pretrained(policy)
    ref = AutoModelForCausalLM.from_pretrained(policy)
    rm = AutoModelForSequenceClassification.from_pretrained(reward, num_labels=1)
    vm = AutoModelForSequenceClassification.from_pretrained(reward, num_labels=1)
    ids = tokenize_prompts(tok, prompts, cfg.max_prompt_length)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = PPOTrainer(
            args=ppo_config(cfg, tmp),
            processing_class=tok,
            model=pol,
            ref_model=ref,
            reward_model=rm,
            value_model=vm,
            train_dataset=Dataset.from_dict({"input_ids": ids}),
            eval_dataset=Dataset.from_dict({"input_ids": ids[:1]}),
        )
        trainer.train()
    pol.save_pretrained(out)
    tok.save_pretrained(out)


def timed(fn: Callable[[Path], object], work: Path) -> tuple[float, float]:
    out = work / f"out-{time.monotonic_ns()}"
    w0, c0 = time.perf_counter(), time.process_time()
    fn(out)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    shutil.rmtree(out, ignore_errors=True)
    return wall, cpu


def compare(name: str, variants: dict[str, Callable[[Path], object]], work: Path, n: int) -> None:
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    for fn in variants.values():  # warm-up: imports, caches
        timed(fn, work)
    for _ in range(n):
        for k, fn in variants.items():
            times[k].append(timed(fn, work))
    base = next(iter(variants))
    bw = statistics.median(t[0] for t in times[base])
    bc = statistics.median(t[1] for t in times[base])
    print(f"\n{name} (median of {n}; wall s / cpu s / ratio wall / ratio cpu)")
    for k in variants:
        w = statistics.median(t[0] for t in times[k])
        c = statistics.median(t[1] for t in times[k])
        print(f"  {k:<34} {w:7.2f} {c:7.2f}   {w / bw:5.3f} {c / bc:5.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="policy dir (default: a freshly built tiny one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pairs", type=int, default=128)
    ap.add_argument("--ppo-steps", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="prefloop-bench-"))
    try:
        policy = args.model or build_tiny_policy(work / "tiny")
        rows = preference_rows(args.pairs)
        train, evals = rows[: args.pairs * 7 // 8], rows[args.pairs * 7 // 8 :]
        rcfg = RewardRunConfig(learning_rate=1e-3, num_train_epochs=1)
        compare(
            f"reward model: {len(train)} train / {len(evals)} eval pairs",
            {
                "bare RewardTrainer": lambda o: bare_reward(policy, train, evals, o, rcfg),
                "train_reward": lambda o: train_reward(policy, train, evals, o, rcfg),
            },
            work,
            args.repeats,
        )
        reward = work / "rm"
        train_reward(policy, train, evals, reward, rcfg)
        prompts = [[{"role": "user", "content": p}] for p in PROMPTS]
        pcfg = PPORunConfig(
            learning_rate=1e-3, num_ppo_steps=args.ppo_steps, response_length=16,
            num_ppo_epochs=2, eval_samples_per_prompt=2,
        )  # fmt: skip
        compare(
            f"PPO: {args.ppo_steps} steps x {pcfg.per_device_train_batch_size} rollouts",
            {
                "bare PPOTrainer": lambda o: bare_ppo(policy, reward, prompts, o, pcfg),
                "train_ppo (no held-out)": lambda o: train_ppo(
                    policy, reward, prompts, [], o, pcfg
                ),
                "train_ppo (4 held-out x 2 samples)": lambda o: train_ppo(
                    policy, reward, prompts, prompts[:4], o, pcfg
                ),
            },
            work,
            args.repeats,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
