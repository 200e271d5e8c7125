"""Preference pairs -> token ids, fitting ``max_length`` by cutting from the left.

Real chat data is long. A pair whose ``prompt + reply`` is over ``max_length`` tokens keeps its
final replies and latest turns: the oldest prompt turns are dropped first (a leading system
message stays), and only when the latest user turn and the reply alone are still too long are
the oldest tokens cut. The reward head reads the last token, so the end is what must survive.
Every cut is counted; with ``truncation="drop"`` long pairs are left out instead (counted too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Messages = list[dict[str, Any]]


@dataclass
class PairStats:
    """What fitting a set of pairs into ``max_length`` did."""

    pairs: int = 0
    truncated: int = 0  # pairs shortened (turns dropped and/or tokens cut), all kept
    turns_dropped: int = 0  # prompt messages removed across all pairs
    tokens_cut: int = 0  # pairs that also lost tokens from the left of their first kept turn
    dropped: int = 0  # pairs left out (truncation="drop")
    longest: int = 0  # longest pair before fitting, in tokens

    def as_metrics(self, prefix: str) -> dict[str, int]:
        return {
            f"{prefix}_pairs": self.pairs,
            f"{prefix}_truncated": self.truncated,
            f"{prefix}_turns_dropped": self.turns_dropped,
            f"{prefix}_tokens_cut": self.tokens_cut,
            f"{prefix}_dropped_too_long": self.dropped,
            f"{prefix}_longest_tokens": self.longest,
        }


def as_messages(value: Any) -> Messages:
    """A bare-string reply becomes one assistant message."""
    return [{"role": "assistant", "content": value}] if isinstance(value, str) else list(value)


def _ids(tokenizer: Any, messages: Messages) -> list[int]:
    """Token ids exactly as TRL's RewardTrainer makes them (chat template, no generation prompt)."""
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)
    return list(out["input_ids"])


def _drop_oldest(prompt: Messages) -> tuple[Messages, int]:
    """Remove the oldest non-system turn (and replies up to the next user turn)."""
    head = [m for m in prompt[:1] if m.get("role") == "system"]
    rest = prompt[len(head) :]
    i = 1
    while i < len(rest) and rest[i].get("role") != "user":
        i += 1
    return head + rest[i:], i


def fit_pair(
    tokenizer: Any, prompt: Messages, chosen: Messages, rejected: Messages, max_length: int
) -> tuple[list[int], list[int], int, bool, int]:
    """(chosen ids, rejected ids, prompt turns dropped, tokens cut, longest original length)."""
    c_ids = _ids(tokenizer, prompt + chosen)
    r_ids = _ids(tokenizer, prompt + rejected)
    longest = max(len(c_ids), len(r_ids))
    dropped = 0
    # both replies keep the same conversation, so the pair stays a fair comparison
    while max(len(c_ids), len(r_ids)) > max_length:
        non_system = [m for m in prompt if m.get("role") != "system"]
        if len(non_system) <= 1:
            break
        prompt, n = _drop_oldest(prompt)
        dropped += n
        c_ids = _ids(tokenizer, prompt + chosen)
        r_ids = _ids(tokenizer, prompt + rejected)
    cut = max(len(c_ids), len(r_ids)) > max_length
    return c_ids[-max_length:], r_ids[-max_length:], dropped, cut, longest


def tokenize_pairs(
    tokenizer: Any, rows: list[dict[str, Any]], max_length: int, truncation: str = "left"
) -> tuple[list[dict[str, Any]], PairStats]:
    """Rows ``{prompt, chosen, rejected[, margin]}`` -> ``{chosen_ids, rejected_ids[, margin]}``."""
    stats = PairStats()
    out = []
    for row in rows:
        prompt = list(row.get("prompt") or [])
        chosen, rejected = as_messages(row["chosen"]), as_messages(row["rejected"])
        stats.pairs += 1
        c, r, turns, cut, longest = fit_pair(tokenizer, prompt, chosen, rejected, max_length)
        stats.longest = max(stats.longest, longest)
        if longest > max_length:
            if truncation == "drop":
                stats.dropped += 1
                continue
            stats.truncated += 1
            stats.turns_dropped += turns
            stats.tokens_cut += int(cut)
        item: dict[str, Any] = {"chosen_ids": c, "rejected_ids": r}
        if "margin" in row:
            item["margin"] = float(row["margin"])
        out.append(item)
    return out, stats
