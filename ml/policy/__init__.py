"""Policy optimisation behind one small interface, one module per algorithm.

Each algorithm module (``ppo``, ``rloo``, ``grpo``, ``dpo``) holds all of its TRL-specific code
and exposes ``train(config, data, callbacks) -> TrainResult``: it trains from
``data.policy_path``, saves the new policy to ``data.out_dir`` and returns its metrics and
per-step curves. It never judges its own result: :mod:`ml.policy.gate` does, the same way for
every algorithm. An upgrade of TRL touches only the algorithm modules.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..callbacks import ProgressFn, StopFn

Messages = list[dict[str, str]]

#: algorithm -> module with ``train`` and ``CURVE_KEYS``
MODULES = {
    "ppo": "ml.policy.ppo",
    "rloo": "ml.policy.rloo",
    "grpo": "ml.policy.grpo",
    "dpo": "ml.policy.dpo",
}


@dataclass
class PolicyData:
    """Inputs of one policy run (paths and rows; no database)."""

    policy_path: Path
    out_dir: Path
    reward_path: Path | None = None
    train_prompts: list[Messages] = field(default_factory=list)
    heldout_prompts: list[Messages] = field(default_factory=list)
    train_pairs: list[dict[str, Any]] = field(default_factory=list)
    eval_pairs: list[dict[str, Any]] = field(default_factory=list)
    place: Any = None  # ml.device.Placement for trainers that take one (ppo); None: default


@dataclass
class Callbacks:
    """Progress ``(step, total, logs)`` and cooperative cancellation."""

    progress: ProgressFn | None = None
    should_stop: StopFn | None = None


@dataclass
class TrainResult:
    """What a trainer reports: scalars and per-logged-step rows ``{"step": s, key: value}``."""

    metrics: dict[str, Any]
    curves: list[dict[str, Any]]


def module(algorithm: str) -> Any:
    """The algorithm's module (imported on first use: TRL loads only for what runs)."""
    if algorithm not in MODULES:
        raise LookupError(f"unknown policy algorithm {algorithm!r}")
    return importlib.import_module(MODULES[algorithm])


def train(config: Any, data: PolicyData, callbacks: Callbacks) -> TrainResult:
    """Train with ``config.algorithm``'s module."""
    result: TrainResult = module(config.algorithm).train(config, data, callbacks)
    return result


def curve_rows(history: list[dict[str, Any]], keys: dict[str, str], marker: str) -> list[dict]:
    """Logged dicts that contain ``marker`` -> rows with our curve names."""
    return [
        {"step": h["step"], **{new: h[old] for old, new in keys.items() if old in h}}
        for h in history
        if marker in h
    ]


def trl_common(cfg: Any, output_dir: str) -> dict[str, Any]:
    """TrainingArguments every TRL config here gets: CPU-safe, quiet, nothing written."""
    return {
        "output_dir": output_dir,
        "learning_rate": cfg.learning_rate,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "seed": cfg.seed,
        "activation_checkpointing": cfg.gradient_checkpointing,
        "data_seed": cfg.seed,
        "bf16": False,
        "fp16": False,
        "report_to": [],
        "save_strategy": "no",
        "eval_strategy": "no",
        "push_to_hub": False,
        "disable_tqdm": True,
        "logging_steps": 1,
        "dataloader_num_workers": 0,
    }


def train_and_save(trainer: Any, stopped: Any, cb: Callbacks, tok: Any, out_dir: Path) -> Any:
    """Run ``trainer``; unless cancelled (by the progress callback or ``cb.should_stop``), save
    the unwrapped model with ``tok`` into ``out_dir``. Returns TRL's train output."""
    from ..callbacks import Cancelled
    from ..store import save_atomically

    result = trainer.train()
    if stopped.stopped:
        raise Cancelled("training cancelled")
    model = trainer.accelerator.unwrap_model(trainer.model)
    if cb.should_stop is not None and cb.should_stop():
        raise Cancelled("training cancelled")
    save_atomically(model, tok, out_dir)
    return result
