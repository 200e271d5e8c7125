"""Tokens/s of ``LocalGenerator.generate`` vs a bare ``model.generate()`` on the same prompts.

    python bench/generation_speed.py [--model PATH] [--n 4] [--max-new-tokens 64] [--repeats 3]

Both sides chat-template the same prompts with left padding, sample with the same parameters
and seed in batches of the same size, and count generated tokens up to EOS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ml.generate import GenerationParams, LocalGenerator  # noqa: E402
from ml.tiny import PROMPTS, build_tiny_policy  # noqa: E402


def count_tokens(tok, texts: list[str]) -> int:
    return sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)


def bare(model, tok, prompts, n: int, p: GenerationParams, batch: int) -> list[str]:
    """Plain transformers: template, pad left, generate, decode the new tokens."""
    flat = [m for m in prompts for _ in range(n)]
    torch.manual_seed(p.seed)
    texts: list[str] = []
    for i in range(0, len(flat), batch):
        enc = tok.apply_chat_template(
            flat[i : i + batch], add_generation_prompt=True, padding=True,
            return_tensors="pt", return_dict=True,
        )  # fmt: skip
        with torch.no_grad():
            out = model.generate(
                **enc, max_new_tokens=p.max_new_tokens, do_sample=True, temperature=p.temperature,
                top_p=p.top_p, top_k=0, pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )  # fmt: skip
        texts.extend(
            tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        )
    return texts


def ours(gen: LocalGenerator, prompts, n: int, p: GenerationParams) -> list[str]:
    return [t for x in gen.generate(prompts, n, p) for t in x]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="policy dir (default: a freshly built tiny one)")
    ap.add_argument("--n", type=int, default=4, help="samples per prompt")
    ap.add_argument("--prompts", type=int, default=12)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="prefloop-genbench-"))
    try:
        path = args.model or build_tiny_policy(work / "tiny")
        gen = LocalGenerator(path, batch_size=args.batch)
        model, tok = gen.model, gen.tokenizer  # same weights and tokenizer for both sides
        prompts = [
            [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}] for i in range(args.prompts)
        ]
        p = GenerationParams(
            max_new_tokens=args.max_new_tokens, temperature=0.8, top_p=0.95, seed=0
        )
        runs: dict[str, list[tuple[float, float]]] = {
            "bare model.generate": [],
            "LocalGenerator.generate": [],
        }
        sides = {
            "bare model.generate": lambda: bare(model, tok, prompts, args.n, p, args.batch),
            "LocalGenerator.generate": lambda: ours(gen, prompts, args.n, p),
        }
        for fn in sides.values():  # warm-up
            fn()
        outputs: dict[str, list[str]] = {}
        for i in range(args.repeats):
            order = list(sides) if i % 2 == 0 else list(sides)[::-1]
            for name in order:
                w, c = time.perf_counter(), time.process_time()
                texts = sides[name]()
                w, c = time.perf_counter() - w, time.process_time() - c
                k = count_tokens(tok, texts)
                runs[name].append((k / w, k / c))
                outputs[name] = texts
        print(
            f"model {path}, {args.prompts} prompts x {args.n} samples, "
            f"<= {args.max_new_tokens} new tokens, batch {args.batch}, "
            f"{torch.get_num_threads()} threads; median of {args.repeats}"
        )
        base_w = statistics.median(r[0] for r in runs["bare model.generate"])
        base_c = statistics.median(r[1] for r in runs["bare model.generate"])
        print(
            f"  {'':<26} {'tok/s wall':>11} {'tok/s cpu':>10} {'ratio wall':>11} {'ratio cpu':>10}"
        )
        for name, xs in runs.items():
            w = statistics.median(r[0] for r in xs)
            c = statistics.median(r[1] for r in xs)
            print(f"  {name:<26} {w:11.1f} {c:10.1f} {w / base_w:11.3f} {c / base_c:10.3f}")
        same = outputs["bare model.generate"] == outputs["LocalGenerator.generate"]
        print(f"  identical outputs: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
