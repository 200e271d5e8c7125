"""Which candidates of a sampled pool are worth a human label: the ones the reward model is least
sure about (smallest reward gap), with an exploration share chosen at random.

Pure functions over rewards plus a small scorer; no database (the worker's glue lives in
workers/selection.py).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Choice:
    """The kept candidate indices, why (uncertainty | explore) and the reward gap among them."""

    indices: list[int]
    method: str
    gap: float

    @property
    def priority(self) -> float:
        return uncertainty(self.gap, len(self.indices))


def uncertainty(gap: float, k: int = 2) -> float:
    """How unsure the Bradley-Terry model is about the kept candidates, in (0, 1]: 1 when their
    rewards tie, towards 0 as the mean gap between neighbours grows (2 * (1 - sigmoid(gap)))."""
    if not math.isfinite(gap):
        return 0.0
    step = abs(gap) / max(k - 1, 1)
    return 2.0 * (1.0 - 1.0 / (1.0 + math.exp(-step)))


def spread(rewards: list[float], indices: list[int]) -> float:
    vals = [rewards[i] for i in indices]
    return max(vals) - min(vals)


def least_certain(rewards: list[float], k: int) -> list[int]:
    """The k candidates whose rewards lie closest together (the narrowest window of the sorted
    rewards; ties go to the earlier window)."""
    if k >= len(rewards):
        return list(range(len(rewards)))
    order = sorted(range(len(rewards)), key=lambda i: (rewards[i], i))
    best = min(
        range(len(order) - k + 1), key=lambda s: rewards[order[s + k - 1]] - rewards[order[s]]
    )
    return sorted(order[best : best + k])


def choose(rewards: list[float], k: int, explore: float, rng: random.Random) -> Choice:
    """Keep k of the pool: with probability `explore` a random k (the model's blind spots still
    get labeled), otherwise the least certain k. The gap is recorded either way."""
    if rng.random() < explore:
        idx = sorted(rng.sample(range(len(rewards)), min(k, len(rewards))))
        return Choice(idx, "explore", spread(rewards, idx))
    idx = least_certain(rewards, k)
    return Choice(idx, "uncertainty", spread(rewards, idx))


class RewardScorer:
    """Scores replies to a conversation with a saved reward model, the way TRL's RewardTrainer
    read them in training (prompt + assistant reply through the chat template)."""

    def __init__(self, path: Path | str, batch_size: int = 16, max_length: int = 2048) -> None:
        from transformers import AutoModelForSequenceClassification

        from .store import load_tokenizer

        self.tok = load_tokenizer(Path(path), padding_side="left")
        self.model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, dtype=torch.float32
        ).eval()
        self.model.config.pad_token_id = self.tok.pad_token_id
        self.batch_size = batch_size
        self.max_length = max_length

    def _ids(self, prompt: Messages, reply: str) -> list[int]:
        conv = [*prompt, {"role": "assistant", "content": reply}]
        out: Any = self.tok.apply_chat_template(conv, tokenize=True, return_dict=True)
        return list(out["input_ids"])[-self.max_length :]

    @torch.no_grad()
    def score(self, prompt: Messages, replies: list[str]) -> list[float]:
        """One scalar reward per reply."""
        scores: list[float] = []
        pad = self.tok.pad_token_id or 0
        for start in range(0, len(replies), self.batch_size):
            ids = [self._ids(prompt, r) for r in replies[start : start + self.batch_size]]
            width = max(map(len, ids))
            x = torch.tensor([[pad] * (width - len(i)) + i for i in ids])
            mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids])
            logits = self.model(input_ids=x, attention_mask=mask).logits
            scores.extend(float(v) for v in logits[:, 0])
        return scores
