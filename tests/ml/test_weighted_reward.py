"""Per-pair loss weights in reward training: the overridden RewardTrainer loss really weights."""

from __future__ import annotations

from pathlib import Path

import torch

from ml.reward import RewardRunConfig, train_reward, weighted_pair_loss
from tests.ml.conftest import make_preference_rows


def test_weighted_pair_loss_is_a_weight_not_a_margin() -> None:
    chosen = torch.tensor([2.0, 0.0, -1.0], requires_grad=True)
    rejected = torch.zeros(3)
    per_pair = -torch.nn.functional.logsigmoid(chosen.detach() - rejected)
    w = torch.tensor([1.0, 0.0, 3.0])
    loss = weighted_pair_loss(chosen, rejected, w)
    assert torch.isclose(loss, (w * per_pair).sum() / w.sum())
    loss.backward()
    assert chosen.grad[1] == 0  # a zero-weight pair pulls nothing
    # d/dc of -log sigmoid(c - r) is -sigmoid(r - c); pair 2 carries 3/4 of the weight
    assert torch.isclose(chosen.grad[2], -0.75 * torch.sigmoid(torch.tensor(1.0)))
    # equal weights are the plain mean (TRL's loss); scaling every weight alike changes nothing
    ones = weighted_pair_loss(chosen.detach(), rejected, torch.ones(3))
    assert torch.isclose(ones, per_pair.mean())
    assert torch.isclose(weighted_pair_loss(chosen.detach(), rejected, 7 * w), loss.detach())


def test_weights_change_what_the_trainer_learns(tiny_policy_dir: Path, tmp_path: Path) -> None:
    """Same rows, flipped labels on half: weight 0 on the flipped half learns the clean
    preference; weight 0 on the clean half learns the flipped one."""
    torch.set_num_threads(1)
    rows = make_preference_rows(32, seed=3)
    clean, flipped = (
        rows[:16],
        [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in rows[16:]],
    )
    cfg = RewardRunConfig(learning_rate=3e-3, num_train_epochs=3, per_device_train_batch_size=8,
                          max_length=128)  # fmt: skip
    evals = make_preference_rows(12, seed=4)
    trust_clean = [{**r, "weight": 1.0} for r in clean] + [{**r, "weight": 0.0} for r in flipped]
    trust_flip = [{**r, "weight": 0.0} for r in clean] + [{**r, "weight": 1.0} for r in flipped]
    a = train_reward(tiny_policy_dir, trust_clean, evals, tmp_path / "a", cfg)
    b = train_reward(tiny_policy_dir, trust_flip, evals, tmp_path / "b", cfg)
    assert a["eval_accuracy"] >= 0.75 > 0.25 >= b["eval_accuracy"], (a, b)
