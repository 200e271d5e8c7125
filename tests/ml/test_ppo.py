"""PPO with the real TRL experimental PPOTrainer on a tiny policy and reward model."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.callbacks import Cancelled
from ml.ppo import PPORunConfig, mean_reward, train_ppo
from ml.store import verify_loadable
from tests.ml.conftest import chat_prompts

CFG = dict(
    learning_rate=1e-3,
    num_ppo_steps=8,
    per_device_train_batch_size=8,
    num_ppo_epochs=2,
    response_length=16,
    eval_samples_per_prompt=4,
)


def test_ppo_raises_heldout_reward(
    tiny_policy_dir: Path, tiny_reward: tuple[Path, dict], tmp_path: Path
) -> None:
    reward_dir, _ = tiny_reward
    prompts = chat_prompts()
    train, heldout = prompts[:14], prompts[14:]
    steps: list[tuple[int, int]] = []
    out = tmp_path / "policy-v2"
    metrics = train_ppo(
        tiny_policy_dir, reward_dir, train, heldout, out, PPORunConfig(**CFG),
        progress=lambda step, total, logs: steps.append((step, total)),
    )  # fmt: skip
    assert metrics["heldout_reward_after"] > metrics["heldout_reward_before"] + 0.2
    assert metrics["kl_to_ref"] > 0
    assert (metrics["n_train"], metrics["n_heldout"]) == (14, 6)
    curves = metrics["curves"]
    assert [c["step"] for c in curves] == list(range(1, 9))
    assert {"reward", "kl", "rlhf_reward", "entropy", "policy_loss", "value_loss"} <= set(curves[0])
    assert steps[-1] == (8, 8)
    verify_loadable(out, "policy")
    # the saved policy reproduces the reported held-out reward
    again = mean_reward(
        reward_dir, out, heldout, max_new_tokens=16, temperature=0.7, samples_per_prompt=4, seed=1
    )
    assert again == pytest.approx(metrics["heldout_reward_after"], abs=1e-4)


def test_ppo_cancellation(
    tiny_policy_dir: Path, tiny_reward: tuple[Path, dict], tmp_path: Path
) -> None:
    reward_dir, _ = tiny_reward
    prompts = chat_prompts()
    seen: list[int] = []
    out = tmp_path / "never"
    cfg = PPORunConfig(**{**CFG, "num_ppo_steps": 100, "eval_samples_per_prompt": 1})
    with pytest.raises(Cancelled):
        train_ppo(
            tiny_policy_dir, reward_dir, prompts[:8], prompts[8:10], out, cfg,
            progress=lambda step, total, logs: seen.append(step),
            should_stop=lambda: bool(seen),
        )  # fmt: skip
    assert max(seen) == 1
    assert not out.exists()
