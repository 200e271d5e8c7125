"""Policy-run parameters: the models live in ml/params.py next to the other run kinds
(kind ``policy``, one model per algorithm); this module adds what policy code needs on top."""

from __future__ import annotations

from typing import Any

from ml.params import (
    POLICY_ALGORITHMS as ALGORITHMS,
)
from ml.params import (
    POLICY_MODELS as MODELS,
)
from ml.params import (
    DPOParams,
    GRPOParams,
    ParamError,
    PolicyGateParams,
    PolicyPPOParams,
    RLOOParams,
    parse,
)

__all__ = [
    "ALGORITHMS",
    "MODELS",
    "ONLINE",
    "WHEN",
    "DPOParams",
    "GRPOParams",
    "PolicyGateParams",
    "PolicyPPOParams",
    "PolicyParamError",
    "RLOOParams",
    "eval_sampling",
    "parse_params",
]

PolicyParamError = ParamError
#: algorithms that optimise against a reward model (DPO learns from the pairs directly)
ONLINE = frozenset({"ppo", "rloo", "grpo"})

#: when to pick which algorithm (shown on the run form; docs/training.md says more)
WHEN = {
    "ppo": "Reward model + value model; the most knobs and the slowest step. TRL dropped it "
    "after 1.12: keep for continuity.",
    "rloo": "Reward model, no value model: several samples per prompt, leave-one-out baseline. "
    "Cheaper than PPO per step; a good default with a trusted reward model.",
    "grpo": "Like RLOO with group-normalised advantages; TRL's most developed online trainer. "
    "beta > 0 keeps it near the reference.",
    "dpo": "No reward model: learns straight from the majority-voted pairs. Cheapest; best when "
    "labels are plentiful and the reward model is weak or missing.",
}


def parse_params(params: dict[str, Any] | None, default: str = "ppo") -> Any:
    """Validate a policy run's params into its algorithm's model (ParamError names the field)."""
    data = dict(params or {})
    data.setdefault("algorithm", default)
    return parse("policy", data)


def eval_sampling(cfg: Any) -> tuple[int, float]:
    """(max new tokens, temperature) of the gate's held-out samples: as in training unless set."""
    tokens = int(getattr(cfg, "response_length", 0) or getattr(cfg, "max_completion_length", 64))
    temperature = float(getattr(cfg, "temperature", 0.7))
    return (
        cfg.eval_max_new_tokens if cfg.eval_max_new_tokens is not None else tokens,
        cfg.eval_temperature if cfg.eval_temperature is not None else temperature,
    )
