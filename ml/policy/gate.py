"""The promotion gate every policy algorithm passes through, with no TRL in it.

Held-out prompts are sampled several times from the starting policy and from the new one with
the same seeds, and every sample is scored by the reward model on the templated conversation
(the way TRL's online trainers score their rollouts). The gain is measured per prompt (mean of
its samples after minus before); a paired bootstrap over prompts gives its 95% interval, and the
gate asks that the interval's lower bound be above zero: a gain that noise could produce does
not pass. KL to the reference is the mean over the new policy's samples of the summed per-token
log-probability difference, and must stay within the bound. For DPO the held-out pairs are
scored by the implicit reward ``beta * (log pi/ref(chosen) - log pi/ref(rejected))``: the
preference accuracy must rise and the mean margin's lower bound must be above zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..callbacks import Cancelled, StopFn

Messages = list[dict[str, str]]


@dataclass
class Interval:
    """Mean of per-unit values with a percentile bootstrap 95% interval."""

    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def bootstrap(values: list[float], samples: int = 2000, seed: int = 0) -> Interval:
    """Percentile bootstrap 95% interval of the mean of ``values`` (one value per unit).

    For a paired comparison pass the per-unit differences: resampling units keeps each pair
    together, which is what makes the interval paired.
    """
    import numpy as np

    x = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    if x.size == 1:
        return Interval(float(x[0]), -math.inf, math.inf, 1)  # one unit says nothing about noise
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(samples, x.size))
    means = x[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(float(x.mean()), float(low), float(high), int(x.size))


@dataclass
class GateResult:
    """Everything the gate measured and decided; stored on the version and the run."""

    passed: bool
    reason: str
    kl: float
    kl_max: float
    reward_before: float | None = None
    reward_after: float | None = None
    gain: dict[str, float] | None = None
    per_prompt: list[list[float]] = field(default_factory=list)  # [before, after] per prompt
    kl_per_prompt: list[float] = field(default_factory=list)
    preference: dict[str, float] | None = None

    def as_metrics(self) -> dict[str, Any]:
        """Flat scalars for the metrics table plus the details the run page charts."""
        out: dict[str, Any] = {
            "gate_passed": self.passed,
            "gate_reason": self.reason,
            "kl_to_ref": self.kl,
            "kl_max": self.kl_max,
        }
        if self.gain is not None:
            out.update(
                heldout_reward_before=self.reward_before,
                heldout_reward_after=self.reward_after,
                heldout_reward_delta=self.gain["mean"],
                gain_ci_low=self.gain["low"],
                gain_ci_high=self.gain["high"],
                n_heldout=self.gain["n"],
            )
        if self.preference is not None:
            out.update({f"pref_{k}": v for k, v in self.preference.items()})
        out["gate"] = {
            "gain": self.gain,
            "per_prompt": self.per_prompt,
            "kl_per_prompt": self.kl_per_prompt,
            "preference": self.preference,
            "kl": self.kl,
            "kl_max": self.kl_max,
        }
        return out


def decide(
    gain: Interval | None,
    kl: float,
    kl_max: float,
    preference: dict[str, float] | None = None,
) -> tuple[bool, str]:
    """The rule: every available check must pass, and at least one quality check must exist.

    - reward gain (when a reward model was given): the 95% interval's lower bound is above 0;
    - preference (DPO): held-out accuracy rose and the margin's lower bound is above 0;
    - KL to the reference is finite and at most ``kl_max``.
    """
    if gain is None and preference is None:
        return False, "nothing to judge the new policy by (no reward model and no held-out pairs)"
    reasons = []
    if gain is not None:
        if gain.n < 2 or not math.isfinite(gain.low):
            return False, f"too few held-out prompts for an interval ({gain.n})"
        if gain.low <= 0:
            return False, (
                f"reward gain {gain.mean:+.4f}, 95% CI [{gain.low:+.4f}, {gain.high:+.4f}] "
                "includes zero or below: not distinguishable from noise"
            )
        reasons.append(f"reward gain {gain.mean:+.4f} (95% CI [{gain.low:+.4f}, {gain.high:+.4f}])")
    if preference is not None:
        before, after = preference["accuracy_before"], preference["accuracy_after"]
        if not after > before:
            return False, f"held-out preference accuracy did not rise ({before:.3f} -> {after:.3f})"
        if not preference["margin_low"] > 0:
            return False, (
                f"held-out implicit-reward margin {preference['margin_mean']:+.4f}, 95% CI low "
                f"{preference['margin_low']:+.4f} is not above zero"
            )
        reasons.append(f"preference accuracy {before:.3f} -> {after:.3f}")
    if not math.isfinite(kl):
        return False, "KL to the reference could not be measured"
    if kl > kl_max:
        return False, f"KL to reference {kl:.4f} exceeds the bound {kl_max:g}"
    reasons.append(f"KL {kl:.4f} <= {kl_max:g}")
    return True, "; ".join(reasons)


# --- sampling and scoring (transformers + torch only) ----------------------------------------


def _dtype(place: Any) -> Any:
    """Scoring runs in the run's dtype on a GPU, in fp32 on CPU."""
    return place.torch_dtype if place is not None and place.is_gpu else torch.float32


def _device(place: Any) -> str:
    return place.device if place is not None else "cpu"


def _load_causal(path: Path, place: Any = None) -> Any:
    from transformers import AutoModelForCausalLM

    from ..lora import _load_merged, is_adapter_only

    if is_adapter_only(path):  # merged in memory; the store merges on first activation
        model = _load_merged(path, _dtype(place))
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=_dtype(place))
    model.to(_device(place))
    model.eval()
    return model


def _load_reward(path: Path, place: Any = None) -> Any:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=1, dtype=_dtype(place)
    )
    model.to(_device(place))
    model.eval()
    return model


def prompt_ids(tokenizer: Any, messages: Messages, max_length: int = 1024) -> list[int]:
    enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
    return list(enc["input_ids"])[-max_length:]


@dataclass
class Sampled:
    """One held-out prompt's samples: completion token ids (EOS kept) and their texts."""

    prompt: list[int]
    completions: list[list[int]]
    texts: list[str]


@torch.no_grad()
def sample(
    model: Any,
    tokenizer: Any,
    prompts: list[Messages],
    n: int,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    should_stop: StopFn | None = None,
) -> list[Sampled]:
    """``n`` samples per prompt; prompt ``i`` always uses seed ``seed + i`` (paired draws)."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    out = []
    for i, messages in enumerate(prompts):
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled while scoring held-out prompts")
        ids = prompt_ids(tokenizer, messages)
        x = torch.tensor([ids], device=model.device)
        gen: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            gen = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)
            seqs = model.generate(
                x,
                attention_mask=torch.ones_like(x),
                max_new_tokens=max_new_tokens,
                num_return_sequences=n,
                eos_token_id=eos,
                pad_token_id=pad,
                **gen,
            )
        completions = []
        for row in seqs[:, len(ids) :].tolist():
            cut = row.index(eos) + 1 if eos in row else len(row)
            completions.append(row[:cut])
        texts = [tokenizer.decode(c, skip_special_tokens=True) for c in completions]
        out.append(Sampled(ids, completions, texts))
    return out


@torch.no_grad()
def score(
    reward_model: Any,
    tokenizer: Any,
    prompts: list[Messages],
    sampled: list[Sampled],
    batch_size: int = 16,
) -> list[list[float]]:
    """Reward of every sample, read on ``prompt + [assistant: text]`` through the chat template."""
    out = []
    for messages, s in zip(prompts, sampled, strict=True):
        texts = [
            tokenizer.apply_chat_template(
                [*messages, {"role": "assistant", "content": t}], tokenize=False
            )
            for t in s.texts
        ]
        scores: list[float] = []
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(
                texts[start : start + batch_size],
                return_tensors="pt",
                padding=True,
                padding_side="right",
                add_special_tokens=False,
            ).to(reward_model.device)
            scores += reward_model(**enc).logits[:, 0].float().tolist()
        out.append(scores)
    return out


@torch.no_grad()
def sequence_logprobs(model: Any, prompt: list[int], completions: list[list[int]]) -> list[float]:
    """Summed log-probability of each completion after ``prompt`` (one right-padded batch)."""
    if not completions:
        return []
    width = max(len(c) for c in completions)
    rows = [prompt + c + [0] * (width - len(c)) for c in completions]
    mask = [[1] * (len(prompt) + len(c)) + [0] * (width - len(c)) for c in completions]
    ids = torch.tensor(rows, device=model.device)
    attn = torch.tensor(mask, device=model.device)
    logits = model(input_ids=ids, attention_mask=attn).logits[:, len(prompt) - 1 : -1].float()
    target = ids[:, len(prompt) :]
    lp = torch.log_softmax(logits, -1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
    lp = lp * attn[:, len(prompt) :]
    return lp.sum(1).tolist()


def kl_per_prompt(policy: Any, ref: Any, sampled: list[Sampled]) -> list[float]:
    """Per prompt: mean over its samples of sum over tokens of log p_policy - log p_ref."""
    out = []
    for s in sampled:
        a = sequence_logprobs(policy, s.prompt, s.completions)
        b = sequence_logprobs(ref, s.prompt, s.completions)
        out.append(sum(x - y for x, y in zip(a, b, strict=True)) / max(len(a), 1))
    return out


def pair_ids(tokenizer: Any, row: dict[str, Any]) -> tuple[list[int], list[int], list[int]]:
    """(prompt ids, chosen ids, rejected ids) of a conversational preference row."""
    p = prompt_ids(tokenizer, row["prompt"])

    def reply(messages: Messages) -> list[int]:
        full = tokenizer.apply_chat_template([*row["prompt"], *messages], return_dict=True)
        ids = list(full["input_ids"])
        if ids[: len(p)] == p:
            return ids[len(p) :]
        text = "".join(m["content"] for m in messages)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"]) + [
            tokenizer.eos_token_id
        ]

    return p, reply(row["chosen"]), reply(row["rejected"])


def implicit_margins(
    policy: Any, ref: Any, tokenizer: Any, rows: list[dict[str, Any]], beta: float
) -> list[float]:
    """beta * ((log pi - log ref)(chosen) - (log pi - log ref)(rejected)) per pair."""
    out = []
    for row in rows:
        p, c, r = pair_ids(tokenizer, row)
        pc, pr = sequence_logprobs(policy, p, [c, r])
        rc, rr = sequence_logprobs(ref, p, [c, r])
        out.append(beta * ((pc - rc) - (pr - rr)))
    return out


def preference_check(
    margins: list[float], groups: list[str], samples: int, seed: int
) -> dict[str, float]:
    """Held-out accuracy before (policy = reference: every margin 0, a tie counts half) and
    after, and the mean margin's bootstrap interval over prompts (a ranking's pairs move
    together)."""
    by_group: dict[str, list[float]] = {}
    for m, g in zip(margins, groups, strict=True):
        by_group.setdefault(g, []).append(m)
    iv = bootstrap([sum(v) / len(v) for v in by_group.values()], samples, seed)
    acc = sum(1.0 if m > 0 else 0.5 if m == 0 else 0.0 for m in margins) / max(len(margins), 1)
    return {
        "accuracy_before": 0.5,
        "accuracy_after": acc,
        "margin_mean": iv.mean,
        "margin_low": iv.low,
        "margin_high": iv.high,
        "pairs": float(len(margins)),
        "prompts": float(iv.n),
    }


@dataclass
class GateInputs:
    """What the gate needs besides the models: held-out prompts and pairs, and the rule."""

    heldout_prompts: list[Messages]
    kl_max: float
    samples_per_prompt: int = 4
    max_new_tokens: int = 64
    temperature: float = 0.7
    bootstrap_samples: int = 2000
    seed: int = 0
    eval_pairs: list[dict[str, Any]] = field(default_factory=list)
    pair_groups: list[str] = field(default_factory=list)
    dpo_beta: float | None = None


def evaluate(
    start_path: Path,
    new_path: Path,
    reward_path: Path | None,
    inputs: GateInputs,
    should_stop: StopFn | None = None,
    place: Any = None,
) -> GateResult:
    """Score the starting and the new policy on the held-out set and apply :func:`decide`.

    ``place`` (ml.device.Placement, the run's) says where: models load on its device, in its
    dtype on a GPU and fp32 on CPU; None means CPU."""
    from ..lora import ensure_merged
    from ..store import load_tokenizer

    for p in (start_path, reward_path):
        if p is not None:
            ensure_merged(p)  # as the trainers do: a LoRA start or reward version, merged once
    tok = load_tokenizer(Path(start_path), padding_side="left")
    start, new = _load_causal(Path(start_path), place), _load_causal(Path(new_path), place)
    prompts = inputs.heldout_prompts
    args = (inputs.samples_per_prompt, inputs.max_new_tokens, inputs.temperature, inputs.seed)
    after = sample(new, tok, prompts, *args, should_stop=should_stop)
    kls = kl_per_prompt(new, start, after)
    kl = sum(kls) / len(kls) if kls else math.nan
    gain = per_prompt = None
    before_mean = after_mean = None
    if reward_path is not None and prompts:
        rm = _load_reward(Path(reward_path), place)
        rm_tok = load_tokenizer(Path(reward_path), padding_side="right")
        before = sample(start, tok, prompts, *args, should_stop=should_stop)
        s_before = score(rm, rm_tok, prompts, before)
        s_after = score(rm, rm_tok, prompts, after)
        per_prompt = [
            [sum(b) / len(b), sum(a) / len(a)] for b, a in zip(s_before, s_after, strict=True)
        ]
        gain = bootstrap([a - b for b, a in per_prompt], inputs.bootstrap_samples, inputs.seed)
        before_mean = sum(b for b, _ in per_prompt) / len(per_prompt)
        after_mean = sum(a for _, a in per_prompt) / len(per_prompt)
    preference = None
    if inputs.dpo_beta is not None and inputs.eval_pairs:
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled while scoring held-out pairs")
        margins = implicit_margins(new, start, tok, inputs.eval_pairs, inputs.dpo_beta)
        preference = preference_check(
            margins, inputs.pair_groups, inputs.bootstrap_samples, inputs.seed
        )
    ok, reason = decide(gain, kl, inputs.kl_max, preference)
    return GateResult(
        passed=ok,
        reason=reason,
        kl=kl,
        kl_max=inputs.kl_max,
        reward_before=before_mean,
        reward_after=after_mean,
        gain=gain.as_dict() if gain is not None else None,
        per_prompt=per_prompt or [],
        kl_per_prompt=kls,
        preference=preference,
    )
