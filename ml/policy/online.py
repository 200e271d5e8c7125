"""What RLOO and GRPO share: the policy, the reward model as reward function, prompt rows.

Both TRL trainers take the reward model as a ``reward_funcs`` entry and score
``prompt + completion`` through its tokenizer's chat template and log the same keys. With
``beta > 0`` and a full fine-tune they load the reference model themselves from the policy's
path (``model_init_kwargs``); with LoRA (a ``peft_config``) they load none and compute the
reference log-probs with the adapter disabled (TRL 1.12 ``_generate_and_score_completions``).
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

#: TRL log key -> curve name (shared by RLOO and GRPO in TRL 1.12)
CURVE_KEYS = {
    "reward": "reward",
    "reward_std": "reward_std",
    "kl": "kl",
    "entropy": "entropy",
    "loss": "loss",
    "completions/mean_length": "completion_length",
    "clip_ratio/region_mean": "clip_ratio",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
}


def group_args(cfg: Any, output_dir: str, place: Any = None) -> dict[str, Any]:
    """Config kwargs both trainers accept."""
    return {
        **trl_common(cfg, output_dir, place),
        "max_steps": cfg.max_steps,
        "num_generations": cfg.num_generations,
        "max_completion_length": cfg.max_completion_length,
        "temperature": cfg.temperature,
        "top_p": 1.0,
        "top_k": 0,
        "beta": cfg.beta,
        "num_iterations": cfg.num_iterations,
        "epsilon": cfg.epsilon,
        "log_completions": False,
    }


def _fitting(tokenizer: Any, prompts: list[Any], max_length: int) -> list[Any]:
    """Prompts whose templated length fits (TRL 1.12's online trainers do not truncate)."""
    keep = []
    for p in prompts:
        enc = tokenizer.apply_chat_template(p, add_generation_prompt=True, return_dict=True)
        if len(enc["input_ids"]) <= max_length:
            keep.append(p)
    return keep


def train_group(
    trainer_cls: Any, config: Any, cfg: Any, data: PolicyData, cb: Callbacks
) -> TrainResult:
    """Build and run ``trainer_cls`` (RLOOTrainer or GRPOTrainer) with ``config``."""
    import os

    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        set_seed,
    )
    from transformers.trainer_callback import PrinterCallback

    from ..reward import quiet_datasets
    from ..store import load_tokenizer

    out_dir = Path(data.out_dir)
    if data.save and out_dir.exists():
        raise FileExistsError(f"refusing to overwrite {out_dir}")
    if data.reward_path is None:
        raise ValueError(f"{cfg.algorithm} needs a reward model")
    if cb.should_stop is not None and cb.should_stop():
        raise Cancelled("cancelled before start")
    from ..lora import ensure_merged

    ensure_merged(data.policy_path)  # a LoRA version trains from its merged copy
    ensure_merged(data.reward_path)
    tok = load_tokenizer(Path(data.policy_path), padding_side="left")
    rm_tok = load_tokenizer(Path(data.reward_path), padding_side="right")
    prompts = _fitting(tok, data.train_prompts, cfg.max_prompt_length)
    world = int(os.environ.get("WORLD_SIZE", "1"))  # each rank takes a batch per step
    batch = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * world
    if len(prompts) * cfg.num_generations < batch:
        raise ValueError(
            f"{len(prompts)} usable training prompts x {cfg.num_generations} generations "
            f"do not fill one batch of {batch}"
        )
    place = placement_of(data)
    trained, frozen = model_dtypes(cfg, place)
    set_seed(cfg.seed)
    policy = AutoModelForCausalLM.from_pretrained(data.policy_path, dtype=trained)
    policy.generation_config.pad_token_id = tok.pad_token_id
    reward = AutoModelForSequenceClassification.from_pretrained(
        data.reward_path, num_labels=1, dtype=frozen
    )
    reward.eval()
    reward.requires_grad_(False)
    callback = ProgressCallback(cb.progress, cb.should_stop)
    with tempfile.TemporaryDirectory(prefix=f"prefloop-{cfg.algorithm}-") as tmp, quiet_datasets():
        trainer = trainer_cls(
            model=policy,
            reward_funcs=reward,
            args=config(tmp, place),
            train_dataset=Dataset.from_dict({"prompt": prompts}),
            processing_class=tok,
            reward_processing_classes=rm_tok,
            callbacks=[callback],
            peft_config=peft_config(cfg, policy),
        )
        trainer.remove_callback(PrinterCallback)
        result = train_and_save(trainer, callback, cb, tok, data, cfg.lora_r)
        trainable = trainable_params(trainer)
    return TrainResult(
        metrics={
            "train_loss": float(result.training_loss),
            "n_train": len(prompts),
            "n_dropped_too_long": len(data.train_prompts) - len(prompts),
            "steps": int(trainer.state.global_step),
            "trainable_params": trainable,
        },
        curves=curve_rows(callback.history, CURVE_KEYS, "reward"),
    )
