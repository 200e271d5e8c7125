"""Reward-model training with TRL's ``RewardTrainer`` on conversational preference pairs."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from .callbacks import Cancelled, ProgressCallback, ProgressFn, StopFn
from .device import Placement
from .pairs import tokenize_pairs
from .params import RewardParams

CURVE_KEYS = ("loss", "accuracy", "margin", "mean_reward", "learning_rate", "grad_norm", "epoch")


#: the reward run's hyper-parameters are its run-parameter model (one definition)
RewardRunConfig = RewardParams


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


def _to_dataset(items: list[dict[str, Any]]):
    """Pre-tokenized pairs (``chosen_ids``/``rejected_ids``): TRL skips its own tokenizing."""
    from datasets import Dataset

    return Dataset.from_list(items)


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
                # TRL declares it Optional[list[str]] on the base class only through assignment
                cols = ["chosen_ids", "rejected_ids", "margin", "weight"]
                self._signature_columns = cols  # type: ignore[assignment]

        def compute_loss(
            self, model: Any, inputs: Any, return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:  # fmt: skip
            weight = inputs.pop("weight", None)
            _, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
            if weight is None:
                weight = torch.ones(outputs.logits.shape[0] // 2)
            chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
            loss = weighted_pair_loss(
                chosen, rejected, weight.to(chosen.device), inputs.get("margin")
            )
            coef = getattr(self.args, "center_rewards_coefficient", None)
            if coef is not None:
                loss = loss + coef * torch.mean((chosen + rejected) ** 2)
            return (loss, outputs) if return_outputs else loss

    return WeightedRewardTrainer


def reward_config(cfg: RewardRunConfig, output_dir: str, place: Placement | None = None):
    """Build the ``trl.RewardConfig`` used for ``cfg`` (no hub, no checkpoints); mixed precision
    and device follow ``place`` (fp32 on CPU), and so does a blank ``max_length``."""
    from trl import RewardConfig

    from .params import reward_max_length

    place = place or Placement("cpu", "float32")

    return RewardConfig(
        output_dir=output_dir,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps or -1,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_length=reward_max_length(cfg, place.device),
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        center_rewards_coefficient=cfg.center_rewards_coefficient,
        gradient_checkpointing=cfg.gradient_checkpointing,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        **place.trainer_flags(),
        ddp_find_unused_parameters=False,
        report_to=[],
        save_strategy="no",
        eval_strategy="no",
        push_to_hub=False,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def load_reward_backbone(base_model: Path, seed: int, dtype: Any = None):
    """Tokenizer + ``AutoModelForSequenceClassification(num_labels=1)`` from a policy dir."""
    from transformers import AutoModelForSequenceClassification, set_seed
    from trl.trainer.reward_trainer import suppress_seqcls_warning

    from .lora import ensure_merged
    from .store import load_tokenizer

    ensure_merged(base_model)
    tok = load_tokenizer(Path(base_model), padding_side="left")
    set_seed(seed)  # the score head is randomly initialised
    with suppress_seqcls_warning():
        model = AutoModelForSequenceClassification.from_pretrained(
            base_model, num_labels=1, dtype=dtype or torch.float32
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
    place: Placement | None = None,
    save: bool = True,
) -> dict[str, Any]:
    """Train a scalar reward model on preference pairs and save it to ``out_dir``.

    Rows use TRL's *conversational, explicit-prompt* preference format::

        {"prompt": [{"role": "user", "content": ...}, ...],
         "chosen": [{"role": "assistant", "content": ...}],
         "rejected": [{"role": "assistant", "content": ...}]}

    Pairs are tokenized here exactly as TRL 1.12's ``RewardTrainer`` would (chat template of
    ``prompt + reply``; the reward head reads the last token), but a pair over ``max_length`` is
    cut from the left (ml/pairs.py) instead of silently dropped; ``truncation="drop"`` leaves
    long *training* pairs out. Evaluation always keeps every pair. With ``lora_r > 0`` only LoRA
    adapters (and the score head) train and ``out_dir`` holds the adapter (ml/lora.py).
    ``save=False`` (ranks other than 0) trains without writing.
    An optional ``weight`` column (trust weighting) scales each pair's loss
    (``weighted_pair_loss``, an override of TRL's loss; ``margin`` stays TRL's additive offset).

    Returns metrics: ``eval_accuracy``, ``eval_loss``, ``eval_margin``, ``train_loss``,
    ``n_train``, ``n_eval``, ``n_dropped_too_long``, truncation counts (``train_truncated``,
    ``eval_truncated``, ...) and ``curves`` (one dict per logged step).
    Raises :class:`Cancelled` (and writes nothing) if ``should_stop()`` becomes true.
    """
    from transformers.trainer_callback import PrinterCallback
    from trl import RewardTrainer

    from .lora import lora_config, save_adapter
    from .params import reward_max_length
    from .store import save_atomically

    weighted = any("weight" in r for r in train_rows)
    trainer_cls = _weighted_trainer_class() if weighted else RewardTrainer
    cfg = cfg or RewardRunConfig()
    out_dir = Path(out_dir)
    if save and out_dir.exists():
        raise FileExistsError(f"refusing to overwrite {out_dir}")
    if not train_rows:
        raise ValueError("no training pairs")
    if should_stop is not None and should_stop():
        raise Cancelled("cancelled before start")

    place = place or Placement("cpu", "float32")
    # LoRA on a GPU: the frozen base in bf16/fp16 (half the memory); a full fine-tune keeps
    # fp32 master weights and trains in mixed precision
    frozen = place.torch_dtype if cfg.lora_r and place.is_gpu else None
    tok, model = load_reward_backbone(Path(base_model), cfg.seed, frozen)
    max_length = reward_max_length(cfg, place.device)  # a blank one follows the device
    train_items, train_stats = tokenize_pairs(tok, train_rows, max_length, cfg.truncation)
    eval_items, eval_stats = tokenize_pairs(tok, eval_rows, max_length, "left")
    if not train_items:
        raise ValueError(f"all {len(train_rows)} training pairs exceed max_length")
    peft_config = lora_config(cfg, model.config.model_type, "SEQ_CLS")
    callback = ProgressCallback(progress, should_stop)
    with tempfile.TemporaryDirectory(prefix="prefloop-rm-") as tmp, quiet_datasets():
        trainer = trainer_cls(
            model=model,
            args=reward_config(cfg, tmp, place),
            train_dataset=_to_dataset(train_items),
            eval_dataset=_to_dataset(eval_items) if eval_items else None,
            processing_class=tok,
            callbacks=[callback],
            peft_config=peft_config,
        )
        trainer.remove_callback(PrinterCallback)  # progress goes to `progress`, not stdout
        if weighted:
            trainer.data_collator = _WeightCollator(trainer.data_collator)
        n_train, n_eval = len(train_items), len(eval_items)  # TRL's length filter keeps them all
        result = trainer.train()
        if callback.stopped:
            raise Cancelled("training cancelled")
        ev = pairwise_eval(trainer, trainer.eval_dataset) if n_eval else pairwise_eval(trainer, [])
        if should_stop is not None and should_stop():
            raise Cancelled("training cancelled")
        trained = trainer.accelerator.unwrap_model(trainer.model)
        if save and peft_config is not None:
            info = {"kind": "reward", "r": cfg.lora_r, "pad_token_id": tok.pad_token_id}
            save_adapter(trained, tok, base_model, out_dir, info)
        elif save:
            save_atomically(trained, tok, out_dir)
        trainable = sum(p.numel() for p in trained.parameters() if p.requires_grad)

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
        "max_length": max_length,
        "n_dropped_too_long": train_stats.dropped,
        **train_stats.as_metrics("train"),
        **eval_stats.as_metrics("eval"),
        "trainable_params": trainable,
        "lora_r": cfg.lora_r,
        "curves": curves,
    }
