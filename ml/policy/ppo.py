"""PPO through :func:`ml.ppo.train_ppo` (TRL ``trl.experimental.ppo``: trl <= 1.12 only).

TRL removed PPO after 1.12. On an upgrade this module's import fails and only ``ppo`` runs
fail (with that message); RLOO, GRPO and DPO are unaffected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import Callbacks, PolicyData, TrainResult

try:  # the curve names of the PPO wrapper
    from ..ppo import CURVE_KEYS
except ImportError:  # pragma: no cover - TRL without experimental PPO
    CURVE_KEYS = {}


def train(cfg: Any, data: PolicyData, cb: Callbacks) -> TrainResult:
    """Run PPO on ``data.train_prompts``; the held-out estimate is left to the gate."""
    from ..ppo import train_ppo

    if data.reward_path is None:
        raise ValueError("ppo needs a reward model")
    out = train_ppo(
        Path(data.policy_path),
        Path(data.reward_path),
        data.train_prompts,
        [],  # the gate scores held-out prompts for every algorithm alike
        Path(data.out_dir),
        cfg,  # PolicyPPOParams is a PPOParams
        cb.progress,
        cb.should_stop,
    )
    curves = out.pop("curves", [])
    metrics = {k: v for k, v in out.items() if not k.startswith("heldout_") and k != "kl_to_ref"}
    return TrainResult(metrics={**metrics, "steps": cfg.num_ppo_steps}, curves=curves)
