"""RLOO with TRL's ``RLOOTrainer`` (trl >= 0.19; in 1.12 a stable, maintained trainer)."""

from __future__ import annotations

from typing import Any

from . import Callbacks, PolicyData, TrainResult
from .online import CURVE_KEYS, group_args, train_group

__all__ = ["CURVE_KEYS", "train"]


def train(cfg: Any, data: PolicyData, cb: Callbacks) -> TrainResult:
    """Leave-one-out advantages over ``num_generations`` samples per prompt, KL ``beta``."""
    from trl import RLOOConfig, RLOOTrainer

    def config(tmp: str, place: Any) -> Any:
        return RLOOConfig(**group_args(cfg, tmp, place))

    return train_group(RLOOTrainer, config, cfg, data, cb)
