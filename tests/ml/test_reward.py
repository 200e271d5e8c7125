"""Reward-model training with the real TRL RewardTrainer on a tiny model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ml.callbacks import Cancelled
from ml.reward import RewardRunConfig, train_reward
from ml.store import verify_loadable
from tests.ml.conftest import make_preference_rows


def test_reward_learns_separable_preferences(tiny_reward: tuple[Path, dict]) -> None:
    path, metrics = tiny_reward
    assert metrics["eval_accuracy"] >= 0.8
    assert metrics["eval_loss"] < 0.5
    assert metrics["train_loss"] > 0
    assert (metrics["n_train"], metrics["n_eval"], metrics["n_dropped_too_long"]) == (80, 16, 0)
    curves = metrics["curves"]
    assert len(curves) == 20 and curves[0]["step"] == 1 and curves[-1]["step"] == 20
    assert {"loss", "accuracy", "learning_rate"} <= set(curves[0])
    assert curves[-1]["loss"] < curves[0]["loss"]
    verify_loadable(path, "reward")


def test_long_pairs_are_cut_from_the_left_and_kept(tiny_policy_dir: Path, tmp_path: Path) -> None:
    rows = make_preference_rows(12, seed=1)
    long_reply = [{"role": "assistant", "content": "please " * 200}]
    rows[0]["chosen"] = long_reply
    rows[-1]["rejected"] = long_reply  # an eval pair: never left out of the accuracy
    progress: list[tuple[int, int]] = []
    cfg = RewardRunConfig(max_length=64, per_device_train_batch_size=4, num_train_epochs=1)
    metrics = train_reward(
        tiny_policy_dir, rows[:8], rows[8:], tmp_path / "rm", cfg,
        progress=lambda step, total, logs: progress.append((step, total)),
    )  # fmt: skip
    assert (metrics["n_train"], metrics["n_eval"], metrics["n_dropped_too_long"]) == (8, 4, 0)
    assert (metrics["train_truncated"], metrics["eval_truncated"]) == (1, 1)
    assert metrics["train_tokens_cut"] == 1 and metrics["train_longest_tokens"] > 200
    assert progress and progress[-1] == (2, 2)
    with pytest.raises(FileExistsError):
        train_reward(tiny_policy_dir, rows[:8], rows[8:], tmp_path / "rm", cfg)
    # truncation="drop" leaves long training pairs out (counted); eval still keeps every pair
    dropped = train_reward(
        tiny_policy_dir, rows[:8], rows[8:], tmp_path / "rm2",
        RewardRunConfig(**{**cfg.model_dump(), "truncation": "drop"}),
    )  # fmt: skip
    assert (dropped["n_train"], dropped["n_eval"], dropped["n_dropped_too_long"]) == (7, 4, 1)


def test_blank_max_length_follows_the_device(tiny_policy_dir: Path, tmp_path: Path) -> None:
    """max_length left blank: 512 tokens on CPU (a long pair is cut to it), 1024 on a GPU."""
    from ml.params import RewardParams, reward_max_length

    cfg = RewardRunConfig(per_device_train_batch_size=4, max_steps=1)
    assert cfg.max_length is None and "max_length" not in cfg.stored()
    assert [reward_max_length(cfg, d) for d in ("cpu", "cuda", "cuda:1", "mps")] == [
        512, 1024, 1024, 1024,
    ]  # fmt: skip
    assert reward_max_length(RewardParams(max_length=300), "cuda") == 300  # explicit wins
    rows = make_preference_rows(12, seed=3)
    rows[0]["chosen"] = [{"role": "assistant", "content": "please " * 700}]
    metrics = train_reward(tiny_policy_dir, rows[:8], rows[8:], tmp_path / "rm", cfg, save=False)
    assert metrics["max_length"] == 512
    assert metrics["train_truncated"] == 1 and metrics["train_longest_tokens"] > 512


def test_reward_cancellation(tiny_policy_dir: Path, tmp_path: Path) -> None:
    rows = make_preference_rows(64, seed=2)
    steps: list[int] = []
    out = tmp_path / "rm"
    start = time.monotonic()
    with pytest.raises(Cancelled):
        train_reward(
            tiny_policy_dir, rows, [], out,
            RewardRunConfig(per_device_train_batch_size=4, num_train_epochs=50),
            progress=lambda step, total, logs: steps.append(step),
            should_stop=lambda: bool(steps),
        )  # fmt: skip
    assert time.monotonic() - start < 30
    assert max(steps) <= 2  # stopped right after the first step, not after 800
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
