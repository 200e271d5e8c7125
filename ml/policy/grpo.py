"""GRPO with TRL's ``GRPOTrainer`` (trl 1.12). ``beta`` is always > 0 here: TRL's default of 0
loads no reference model and applies no KL, which the promotion gate would then have to catch."""

from __future__ import annotations

from typing import Any

from . import Callbacks, PolicyData, TrainResult
from .online import CURVE_KEYS, group_args, train_group

__all__ = ["CURVE_KEYS", "train"]


def train(cfg: Any, data: PolicyData, cb: Callbacks) -> TrainResult:
    """Group-normalised advantages over ``num_generations`` samples per prompt, KL ``beta``."""
    from trl import GRPOConfig, GRPOTrainer

    def config(tmp: str, place: Any) -> Any:
        return GRPOConfig(
            **group_args(cfg, tmp, place), loss_type=cfg.loss_type, scale_rewards=cfg.scale_rewards
        )

    return train_group(GRPOTrainer, config, cfg, data, cb)
