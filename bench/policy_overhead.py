"""Overhead of ml.policy's algorithm modules over bare TRL scripts (same data, model, settings).

    python bench/policy_overhead.py [--model PATH] [--repeats 3] [--threads 1] [--steps 8]

For each algorithm, times in one process, interleaved, a bare TRL script (load, train, save)
against ``ml.policy.<algorithm>.train`` doing the same work (plus progress/cancel callbacks,
prompt-length filtering, atomic save), and separately the promotion gate (held-out sampling
before and after, reward scoring, KL, bootstrap), which is extra work by design and fixed per
run. Prints medians and ratios (target <= 1.1 for the wrapper).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.train_overhead import bare_ppo, compare, preference_rows, timed  # noqa: E402
from ml.policy import Callbacks, PolicyData  # noqa: E402
from ml.policy import train as policy_train  # noqa: E402
from ml.policy.gate import GateInputs, evaluate  # noqa: E402
from ml.policy.online import group_args  # noqa: E402
from ml.policy.params import parse_params  # noqa: E402
from ml.ppo import PPORunConfig  # noqa: E402
from ml.reward import RewardRunConfig, train_reward  # noqa: E402
from ml.tiny import PROMPTS, build_tiny_policy  # noqa: E402


def bare_online(trainer: str, policy: Path, reward: Path, prompts: list, out: Path, cfg) -> None:  # type: ignore[no-untyped-def]
    """What a user would write with TRL alone: the reward model as reward function."""
    import trl
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(policy, padding_side="left")
    rm_tok = AutoTokenizer.from_pretrained(reward)
    rm = AutoModelForSequenceClassification.from_pretrained(reward, num_labels=1)
    kwargs = group_args(cfg, "")
    if trainer == "GRPO":
        kwargs.update(loss_type=cfg.loss_type, scale_rewards=cfg.scale_rewards)
    with tempfile.TemporaryDirectory() as tmp:
        kwargs["output_dir"] = tmp
        t = getattr(trl, f"{trainer}Trainer")(
            model=str(policy),
            reward_funcs=rm,
            args=getattr(trl, f"{trainer}Config")(**kwargs),
            train_dataset=Dataset.from_dict({"prompt": prompts}),
            processing_class=tok,
            reward_processing_classes=rm_tok,
        )
        t.train()
        t.model.save_pretrained(out)
    tok.save_pretrained(out)


def bare_dpo(policy: Path, rows: list, out: Path, cfg) -> None:  # type: ignore[no-untyped-def]
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import DPOTrainer

    from ml.policy.dpo import dpo_config

    tok = AutoTokenizer.from_pretrained(policy)
    with tempfile.TemporaryDirectory() as tmp:
        t = DPOTrainer(
            model=str(policy),
            args=dpo_config(cfg, tmp),
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
        )
        t.train()
        t.model.save_pretrained(out)
    tok.save_pretrained(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="policy dir (default: a freshly built tiny one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--only", default="rloo,grpo,dpo,ppo")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="prefloop-bench-"))
    try:
        policy = args.model or build_tiny_policy(work / "tiny")
        rows = preference_rows(128)
        reward = work / "rm"
        train_reward(policy, rows[:112], rows[112:], reward, RewardRunConfig(learning_rate=1e-3))
        prompts = [[{"role": "user", "content": f"{p} ({i})"}] for i, p in enumerate(PROMPTS * 2)]
        heldout = prompts[:8]
        common = {"learning_rate": 1e-3, "seed": 0}
        group = {**common, "steps": args.steps, "batch_size": 8, "num_generations": 4}
        group["max_new_tokens"] = 16
        gate_in = GateInputs(heldout, kl_max=10.0, samples_per_prompt=4, max_new_tokens=16)
        for algo in args.only.split(","):
            if algo in ("rloo", "grpo"):
                cfg = parse_params({"algorithm": algo, **group})
                name = "RLOO" if algo == "rloo" else "GRPO"
                bare = lambda o, c=cfg, n=name: bare_online(n, policy, reward, prompts, o, c)  # noqa: E731
                title = f"{name}: {args.steps} steps x 8 completions (4 per prompt), 16 tokens"
            elif algo == "dpo":
                cfg = parse_params({"algorithm": "dpo", **common, "batch_size": 8})
                bare = lambda o, c=cfg: bare_dpo(policy, rows[:112], o, c)  # noqa: E731
                title = "DPO: 112 pairs, 1 epoch, batch 8"
            else:
                cfg = parse_params(
                    {"algorithm": "ppo", **common, "num_ppo_steps": args.steps, "batch_size": 8,
                     "response_length": 16, "num_ppo_epochs": 2}
                )  # fmt: skip
                pcfg = PPORunConfig(
                    learning_rate=1e-3, num_ppo_steps=args.steps, response_length=16,
                    num_ppo_epochs=2,
                )  # fmt: skip
                bare = lambda o, c=pcfg: bare_ppo(policy, reward, prompts, o, c)  # noqa: E731
                title = f"PPO: {args.steps} steps x 8 rollouts, 16 tokens"

            def wrapped(o: Path, c=cfg) -> None:  # type: ignore[no-untyped-def]
                data = PolicyData(policy, o, reward, prompts, heldout, rows[:112], rows[112:])
                policy_train(c, data, Callbacks(lambda *a: None, lambda: False))

            compare(title, {"bare TRL": bare, f"ml.policy.{algo}": wrapped}, work, args.repeats)
            done = work / f"model-{algo}"
            wrapped(done)
            g = [
                timed(lambda _o, d=done: evaluate(policy, d, reward, gate_in), work)
                for _ in range(2)
            ]
            w, c = g[-1]
            print(f"  gate (8 held-out x 4 samples, before+after): wall {w:.2f} s, cpu {c:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
