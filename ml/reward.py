"""Reward-model training with TRL's ``RewardTrainer`` on conversational preference pairs."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .callbacks import Cancelled, ProgressCallback, ProgressFn, StopFn

CURVE_KEYS = ("loss", "accuracy", "margin", "mean_reward", "learning_rate", "grad_norm", "epoch")


@dataclass
class RewardRunConfig:
    """Hyper-parameters of one reward-model run (mapped onto ``trl.RewardConfig``)."""

    learning_rate: float = field(default=5e-5, metadata={"help": "AdamW learning rate."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Passes over the pairs."})
    per_device_train_batch_size: int = field(
        default=8, metadata={"help": "Preference pairs per optimisation step."}
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Micro-batches accumulated per optimiser step."}
    )
    per_device_eval_batch_size: int = field(
        default=16, metadata={"help": "Pairs per forward pass when evaluating."}
    )
    max_length: int | None = field(
        default=2048,
        metadata={"help": "Max tokens of prompt+reply; longer pairs are dropped (and counted)."},
    )
    warmup_steps: int = field(default=0, metadata={"help": "Linear warm-up steps."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    center_rewards_coefficient: float | None = field(
        default=None, metadata={"help": "Penalty pushing mean reward to 0 (TRL option)."}
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Trade compute for memory (off: small CPU models)."}
    )
    logging_steps: int = field(default=1, metadata={"help": "Log (and report) every N steps."})
    seed: int = field(default=0, metadata={"help": "Seed for head init, shuffling, dropout."})


@contextmanager
def quiet_datasets() -> Iterator[None]:
    """Silence ``datasets`` map/filter progress bars (restored afterwards)."""
    from datasets.utils import logging as ds_logging

    was_enabled = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            ds_logging.enable_progress_bar()


def _normalize_row(row: dict[str, Any]) -> dict[str, Any]:
    """Keep TRL's columns; wrap bare-string replies as assistant messages."""
    out = {"prompt": row["prompt"]}
    for key in ("chosen", "rejected"):
        value = row[key]
        out[key] = [{"role": "assistant", "content": value}] if isinstance(value, str) else value
    if "margin" in row:
        out["margin"] = float(row["margin"])
    if "weight" in row:
        out["weight"] = float(row["weight"])
    return out


def _to_dataset(rows: list[dict[str, Any]]):
    from datasets import Dataset

    return Dataset.from_list([_normalize_row(r) for r in rows])


def weighted_pair_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    weight: torch.Tensor,
    margin: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bradley-Terry loss with a per-pair weight: sum(w * -log sigmoid(r_c - r_r - m)) / sum(w).

    TRL's `margin` only shifts the logit (an additive offset); a weight scales a pair's share
    of the loss and of its gradient. Normalized by the weights' sum, so scaling every weight
    alike changes nothing; a pair with weight 0 contributes nothing.
    """
    d = chosen - rejected - (margin if margin is not None else 0.0)
    w = weight.to(d.dtype)
    return (w * -torch.nn.functional.logsigmoid(d)).sum() / w.sum().clamp_min(1e-12)


class _WeightCollator:
    """TRL's preference collator plus a `weight` tensor (1.0 where a row has none)."""

    def __init__(self, base: Any) -> None:
        self.base = base

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        weights = torch.tensor([float(e.get("weight", 1.0)) for e in examples])
        out = self.base([{k: v for k, v in e.items() if k != "weight"} for e in examples])
        out["weight"] = weights
        return out


def _weighted_trainer_class() -> type:
    from trl import RewardTrainer

    class WeightedRewardTrainer(RewardTrainer):
        """RewardTrainer whose loss takes a per-pair `weight` column (weighted_pair_loss)."""

        def _set_signature_columns_if_needed(self) -> None:
            if self._signature_columns is None:
                self._signature_columns = ["chosen_ids", "rejected_ids", "margin", "weight"]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[no-untyped-def]
            weight = inputs.pop("weight", None)
            _, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
            if weight is None:
                weight = torch.ones(outputs.logits.shape[0] // 2)
            chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
            loss = weighted_pair_loss(
                chosen, rejected, weight.to(chosen.device), inputs.get("margin")
            )
            if self.args.center_rewards_coefficient is not None:
                loss = loss + self.args.center_rewards_coefficient * torch.mean(
                    (chosen + rejected) ** 2
                )
            return (loss, outputs) if return_outputs else loss

    return WeightedRewardTrainer


def reward_config(cfg: RewardRunConfig, output_dir: str):
    """Build the ``trl.RewardConfig`` used for ``cfg`` (CPU-safe, no hub, no checkpoints)."""
    from trl import RewardConfig

    return RewardConfig(
        output_dir=output_dir,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_length=cfg.max_length,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        center_rewards_coefficient=cfg.center_rewards_coefficient,
        gradient_checkpointing=cfg.gradient_checkpointing,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=False,
        fp16=False,
        report_to=[],
        save_strategy="no",
        eval_strategy="no",
        push_to_hub=False,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def load_reward_backbone(base_model: Path, seed: int):
    """Tokenizer + ``AutoModelForSequenceClassification(num_labels=1)`` from a policy dir."""
    from transformers import AutoModelForSequenceClassification, set_seed
    from trl.trainer.reward_trainer import suppress_seqcls_warning

    from .store import load_tokenizer

    tok = load_tokenizer(Path(base_model), padding_side="left")
    set_seed(seed)  # the score head is randomly initialised
    with suppress_seqcls_warning():
        model = AutoModelForSequenceClassification.from_pretrained(
            base_model, num_labels=1, dtype=torch.float32
        )
    model.config.pad_token_id = tok.pad_token_id
    return tok, model


@torch.no_grad()
def pairwise_eval(trainer: Any, dataset: Any) -> dict[str, float]:
    """Exact accuracy (chosen > rejected), Bradley-Terry loss and margin on a tokenized dataset."""
    model = trainer.model
    was_training = model.training
    model.eval()
    bs = trainer.args.per_device_eval_batch_size
    diffs = []
    for start in range(0, len(dataset), bs):
        batch = trainer.data_collator(
            [dataset[i] for i in range(start, min(start + bs, len(dataset)))]
        )
        scores = model(
            input_ids=batch["input_ids"].to(model.device),
            attention_mask=batch["attention_mask"].to(model.device),
        ).logits.squeeze(-1)
        chosen, rejected = torch.chunk(scores, 2)
        diffs.append(chosen - rejected)
    model.train(was_training)
    if not diffs:
        return {"eval_accuracy": math.nan, "eval_loss": math.nan, "eval_margin": math.nan}
    d = torch.cat(diffs).float()
    return {
        "eval_accuracy": (d > 0).float().mean().item(),
        "eval_loss": -torch.nn.functional.logsigmoid(d).mean().item(),
        "eval_margin": d.mean().item(),
    }


def train_reward(
    base_model: Path,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    out_dir: Path,
    cfg: RewardRunConfig | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> dict[str, Any]:
    """Train a scalar reward model on preference pairs and save it to ``out_dir``.

    Rows use TRL's *conversational, explicit-prompt* preference format::

        {"prompt": [{"role": "user", "content": ...}, ...],
         "chosen": [{"role": "assistant", "content": ...}],
         "rejected": [{"role": "assistant", "content": ...}]}

    TRL 1.12 ``RewardTrainer`` concatenates ``prompt + chosen`` (and ``prompt + rejected``) and
    tokenizes the full conversation with the tokenizer's chat template, so the reward head reads
    the last token of the templated assistant turn. A bare string reply is wrapped as an
    assistant message; an optional ``margin`` column is passed through, and an optional
    ``weight`` column (trust weighting) scales each pair's loss (``weighted_pair_loss``).
    Pairs longer than ``cfg.max_length`` are silently dropped by TRL: we count them
    (``n_dropped_too_long``).

    Returns metrics: ``eval_accuracy``, ``eval_loss``, ``eval_margin``, ``train_loss``,
    ``n_train``, ``n_eval``, ``n_dropped_too_long`` and ``curves`` (one dict per logged step).
    Raises :class:`Cancelled` (and writes nothing) if ``should_stop()`` becomes true.
    """
    from transformers.trainer_callback import PrinterCallback
    from trl import RewardTrainer

    weighted = any("weight" in r for r in train_rows)
    trainer_cls = _weighted_trainer_class() if weighted else RewardTrainer
    cfg = cfg or RewardRunConfig()
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"refusing to overwrite {out_dir}")
    if not train_rows:
        raise ValueError("no training pairs")
    if should_stop is not None and should_stop():
        raise Cancelled("cancelled before start")

    tok, model = load_reward_backbone(Path(base_model), cfg.seed)
    callback = ProgressCallback(progress, should_stop)
    with tempfile.TemporaryDirectory(prefix="prefloop-rm-") as tmp, quiet_datasets():
        trainer = trainer_cls(
            model=model,
            args=reward_config(cfg, tmp),
            train_dataset=_to_dataset(train_rows),
            eval_dataset=_to_dataset(eval_rows) if eval_rows else None,
            processing_class=tok,
            callbacks=[callback],
        )
        trainer.remove_callback(PrinterCallback)  # progress goes to `progress`, not stdout
        if weighted:
            trainer.data_collator = _WeightCollator(trainer.data_collator)
        n_train = len(trainer.train_dataset)
        n_eval = len(trainer.eval_dataset) if eval_rows else 0
        n_dropped = len(train_rows) - n_train + len(eval_rows) - n_eval
        if n_train == 0:
            raise ValueError(f"all {len(train_rows)} training pairs exceed max_length")
        result = trainer.train()
        if callback.stopped:
            raise Cancelled("training cancelled")
        ev = pairwise_eval(trainer, trainer.eval_dataset) if n_eval else pairwise_eval(trainer, [])
        if should_stop is not None and should_stop():
            raise Cancelled("training cancelled")
        from .store import save_atomically

        save_atomically(trainer.model, tok, out_dir)

    curves = [
        {"step": h["step"], **{k: h[k] for k in CURVE_KEYS if k in h}}
        for h in callback.history
        if "loss" in h
    ]
    return {
        **ev,
        "train_loss": float(result.training_loss),
        "n_train": n_train,
        "n_eval": n_eval,
        "n_dropped_too_long": n_dropped,
        "curves": curves,
    }
