"""Fixtures for the ML worker tests: tiny offline models, synthetic preferences."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

POLITE = [
    "Thank you for asking, I am happy to help.",
    "Sure, please let me explain it step by step.",
    "Of course, thank you, here is a simple answer.",
    "I am glad you asked, thank you.",
    "Thanks, I would recommend a short novel.",
]
RUDE = [
    "Go away, I do not care.",
    "Stop bothering me.",
    "Whatever, ask someone else.",
    "No. Figure it out yourself.",
    "That is a silly question.",
]
EXTRA_PROMPTS = [
    "Can you help me?",
    "What do you think?",
    "Any advice for me?",
    "How are things?",
    "Hi there!",
    "Please answer me.",
    "What is new?",
    "Good morning!",
]


def make_preference_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Separable conversational preference pairs: polite replies beat rude ones."""
    from ml.tiny import PROMPTS

    rng = random.Random(seed)
    prompts = PROMPTS + EXTRA_PROMPTS
    return [
        {
            "prompt": [{"role": "user", "content": rng.choice(prompts)}],
            "chosen": [{"role": "assistant", "content": rng.choice(POLITE)}],
            "rejected": [{"role": "assistant", "content": rng.choice(RUDE)}],
        }
        for _ in range(n)
    ]


def chat_prompts() -> list[list[dict[str, str]]]:
    from ml.tiny import PROMPTS

    return [[{"role": "user", "content": p}] for p in PROMPTS + EXTRA_PROMPTS]


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    """Tiny models run fastest (and least disturbed by busy CPUs) on one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 chat policy + tokenizer in save_pretrained layout (offline, seconds)."""
    from ml.tiny import build_tiny_policy

    return build_tiny_policy(tmp_path_factory.mktemp("tiny") / "policy")


@pytest.fixture(scope="session")
def tiny_reward(
    tiny_policy_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """A reward model trained on the polite-vs-rude pairs: (path, metrics)."""
    import torch

    from ml.reward import RewardRunConfig, train_reward

    rows = make_preference_rows(96, seed=0)
    out = tmp_path_factory.mktemp("rm") / "reward"
    cfg = RewardRunConfig(learning_rate=1e-3, num_train_epochs=2, per_device_train_batch_size=8)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        metrics = train_reward(tiny_policy_dir, rows[:80], rows[80:], out, cfg)
    finally:
        torch.set_num_threads(before)
    return out, metrics
