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
    place: Any = None  # ml.device.Placement (device, dtype); None: CPU, fp32
    save: bool = True  # False on ranks other than 0: train, write nothing


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


def placement_of(data: PolicyData) -> Any:
    """The run's placement (CPU, fp32 when none was resolved)."""
    from ..device import Placement

    return data.place or Placement("cpu", "float32")


def model_dtypes(cfg: Any, place: Any) -> tuple[Any, Any]:
    """(trained, frozen) torch dtypes. On a GPU frozen models (reference, reward) load in the
    run's dtype, and so does a LoRA run's frozen base; a full fine-tune keeps fp32 master weights
    (mixed precision comes from the trainer's bf16/fp16 flag). CPU: fp32 throughout."""
    import torch

    frozen = place.torch_dtype if place.is_gpu else torch.float32
    return (frozen if getattr(cfg, "lora_r", 0) else torch.float32), frozen


def ref_init_kwargs(cfg: Any, place: Any) -> dict[str, Any] | None:
    """``model_init_kwargs`` for the reference model TRL loads itself (full fine-tunes only; with
    LoRA the reference is the policy with its adapter disabled). On a GPU it loads in the run's
    dtype without a device map, and the trainer's accelerator moves it to the rank's device."""
    if getattr(cfg, "lora_r", 0) or not place.is_gpu:
        return None  # TRL's default: fp32, no device map on CPU
    return {"dtype": place.dtype, "device_map": None}


def peft_config(cfg: Any, model: Any) -> Any:
    """The run's ``peft.LoraConfig`` for a causal LM (None for a full fine-tune)."""
    from ..lora import lora_config

    return lora_config(cfg, model.config.model_type, "CAUSAL_LM")


def trl_common(cfg: Any, output_dir: str, place: Any = None) -> dict[str, Any]:
    """TrainingArguments every TRL config here gets: device and mixed precision from ``place``
    (fp32 on CPU), quiet, nothing written."""
    from ..device import Placement

    place = place or Placement("cpu", "float32")
    return {
        "output_dir": output_dir,
        "learning_rate": cfg.learning_rate,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "seed": cfg.seed,
        "activation_checkpointing": cfg.gradient_checkpointing,
        "data_seed": cfg.seed,
        **place.trainer_flags(),
        "model_init_kwargs": ref_init_kwargs(cfg, place),
        "ddp_find_unused_parameters": False,
        "report_to": [],
        "save_strategy": "no",
        "eval_strategy": "no",
        "push_to_hub": False,
        "disable_tqdm": True,
        "logging_steps": 1,
        "dataloader_num_workers": 0,
    }


def trainable_params(trainer: Any) -> int:
    """Parameters the optimiser updates (all of them, or LoRA's)."""
    return sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)


def train_and_save(
    trainer: Any, stopped: Any, cb: Callbacks, tok: Any, data: PolicyData, lora_r: int = 0
) -> Any:
    """Run ``trainer``; unless cancelled (by the progress callback or ``cb.should_stop``), save
    the unwrapped model with ``tok`` into ``data.out_dir`` (when ``data.save``): the full model,
    or with LoRA the adapter and a pointer to its base (ml/lora.py; merged at activation).
    Returns TRL's train output."""
    from ..callbacks import Cancelled
    from ..lora import save_adapter
    from ..store import save_atomically

    result = trainer.train()
    if stopped.stopped:
        raise Cancelled("training cancelled")
    model = trainer.accelerator.unwrap_model(trainer.model)
    if cb.should_stop is not None and cb.should_stop():
        raise Cancelled("training cancelled")
    if not data.save:
        return result
    if lora_r:
        info = {"kind": "policy", "r": lora_r, "pad_token_id": tok.pad_token_id}
        save_adapter(model, tok, data.policy_path, Path(data.out_dir), info)
    else:
        save_atomically(model, tok, Path(data.out_dir))
    return result
