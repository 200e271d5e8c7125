"""DPO with TRL's ``DPOTrainer`` (trl >= 0.x; stable in 1.12) on conversational preference rows.

Rows are the reward run's majority-voted pairs (``{"prompt", "chosen", "rejected"}``). The
reference model is the starting policy: for a full fine-tune TRL loads it from the same path
(``model_init_kwargs``); with LoRA it loads none and computes the reference log-probs with the
adapter disabled (TRL 1.12 ``DPOTrainer``: ``ref_model`` stays None for a peft model). Needs no
reward model. Rows with a trust ``weight`` train with ml.policy.dpo_weighting's per-pair
weighted loss.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..callbacks import Cancelled, ProgressCallback
from . import (
    Callbacks,
    PolicyData,
    TrainResult,
    curve_rows,
    model_dtypes,
    peft_config,
    placement_of,
    train_and_save,
    trainable_params,
    trl_common,
)

#: TRL log key -> curve name
CURVE_KEYS = {
    "loss": "loss",
    "rewards/accuracies": "pref_accuracy",
    "rewards/margins": "margin",
    "rewards/chosen": "reward_chosen",
    "rewards/rejected": "reward_rejected",
    "logps/chosen": "logp_chosen",
    "logps/rejected": "logp_rejected",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
}


def dpo_config(cfg: Any, output_dir: str, place: Any = None) -> Any:
    from trl import DPOConfig

    return DPOConfig(
        **trl_common(cfg, output_dir, place),
        num_train_epochs=cfg.num_train_epochs,
        beta=cfg.beta,
        loss_type=[cfg.loss_type],
        max_length=cfg.max_length,
    )


def train(cfg: Any, data: PolicyData, cb: Callbacks) -> TrainResult:
    """Train on ``data.train_pairs``; ``data.eval_pairs`` are left to the gate."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, set_seed
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOTrainer

    from ..reward import quiet_datasets
    from ..store import load_tokenizer

    out_dir = Path(data.out_dir)
    if data.save and out_dir.exists():
        raise FileExistsError(f"refusing to overwrite {out_dir}")
    if not data.train_pairs:
        raise ValueError("no training pairs")
    if cb.should_stop is not None and cb.should_stop():
        raise Cancelled("cancelled before start")
    from ..lora import ensure_merged

    ensure_merged(data.policy_path)  # a LoRA version trains from its merged copy
    tok = load_tokenizer(Path(data.policy_path), padding_side="left")
    place = placement_of(data)
    set_seed(cfg.seed)
    policy = AutoModelForCausalLM.from_pretrained(
        data.policy_path, dtype=model_dtypes(cfg, place)[0]
    )
    # trust weighting (a `weight` per row): the weighted subclass; otherwise TRL's own trainer
    weighted = any("weight" in r for r in data.train_pairs)
    keys = ("prompt", "chosen", "rejected")
    rows = [
        {k: r[k] for k in keys} | ({"weight": float(r.get("weight", 1.0))} if weighted else {})
        for r in data.train_pairs
    ]
    trainer_cls = DPOTrainer
    if weighted:
        from .dpo_weighting import WeightedDPOTrainer as trainer_cls
    callback = ProgressCallback(cb.progress, cb.should_stop)
    with tempfile.TemporaryDirectory(prefix="prefloop-dpo-") as tmp, quiet_datasets():
        trainer = trainer_cls(
            model=policy,
            args=dpo_config(cfg, tmp, place),
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
            callbacks=[callback],
            peft_config=peft_config(cfg, policy),
        )
        trainer.remove_callback(PrinterCallback)
        n_train = len(trainer.train_dataset)  # type: ignore[arg-type]  # a map-style Dataset here
        if n_train == 0:
            raise ValueError(f"all {len(rows)} training pairs have a prompt over max_length")
        result = train_and_save(trainer, callback, cb, tok, data, cfg.lora_r)
        trainable = trainable_params(trainer)
    return TrainResult(
        metrics={
            "train_loss": float(result.training_loss),
            "n_train": n_train,
            "n_dropped_too_long": len(rows) - n_train,
            "steps": int(trainer.state.global_step),
            "trainable_params": trainable,
        },
        curves=curve_rows(callback.history, CURVE_KEYS, "loss"),
    )
