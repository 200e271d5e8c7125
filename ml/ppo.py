"""PPO fine-tuning of the served policy against a trained reward model (TRL experimental PPO)."""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from .callbacks import Cancelled, ProgressCallback, ProgressFn, StopFn
from .device import Placement
from .params import PPOParams

Messages = list[dict[str, str]]

#: PPO log key -> curve key
CURVE_KEYS = {
    "objective/scores": "reward",
    "objective/kl": "kl",
    "objective/rlhf_reward": "rlhf_reward",
    "objective/entropy": "entropy",
    "loss/policy_avg": "policy_loss",
    "loss/value_avg": "value_loss",
    "policy/approxkl_avg": "approxkl",
    "policy/clipfrac_avg": "clipfrac",
    "val/num_eos_tokens": "num_eos_tokens",
    "lr": "learning_rate",
    "episode": "episode",
}


#: the PPO run's hyper-parameters are its run-parameter model (one definition)
PPORunConfig = PPOParams


def _trl_ppo() -> Any:
    """Import ``trl.experimental.ppo`` without its "experimental API" warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import trl.experimental.ppo as module
    return module


def ppo_config(cfg: PPORunConfig, output_dir: str, place: Placement | None = None):
    """Build the ``PPOConfig`` for ``cfg`` (no hub, no checkpoints, no sample tables); mixed
    precision and device follow ``place`` (fp32 on CPU)."""
    PPOConfig = _trl_ppo().PPOConfig
    place = place or Placement("cpu", "float32")

    batch = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
    world = int(os.environ.get("WORLD_SIZE", "1"))  # each PPO step takes a batch per rank
    return PPOConfig(
        output_dir=output_dir,
        learning_rate=cfg.learning_rate,
        total_episodes=cfg.num_ppo_steps * batch * world,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_mini_batches=cfg.num_mini_batches,
        num_ppo_epochs=cfg.num_ppo_epochs,
        kl_coef=cfg.kl_coef,
        kl_estimator=cfg.kl_estimator,
        cliprange=cfg.cliprange,
        vf_coef=cfg.vf_coef,
        response_length=cfg.response_length,
        temperature=cfg.temperature,
        missing_eos_penalty=cfg.missing_eos_penalty,
        stop_token="eos",
        num_sample_generations=0,
        activation_checkpointing=cfg.gradient_checkpointing,
        seed=cfg.seed,
        **place.trainer_flags(),
        report_to=[],
        save_strategy="no",
        push_to_hub=False,
        disable_tqdm=True,
        logging_steps=1,
    )


def tokenize_prompts(tokenizer: Any, prompts: list[Messages], max_length: int) -> list[list[int]]:
    """Chat-template each prompt with the generation prompt; keep the last ``max_length`` tokens."""
    ids = []
    for messages in prompts:
        enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
        ids.append(list(enc["input_ids"])[-max_length:])
    return ids


def _as_model(obj: Any, cls: Any) -> Any:
    if isinstance(obj, (str, Path)):
        model = cls.from_pretrained(obj, dtype=torch.float32)
        model.eval()
        return model
    return obj


def _left_pad(ids: list[list[int]], pad_id: int) -> torch.Tensor:
    width = max(len(x) for x in ids)
    return torch.tensor([[pad_id] * (width - len(x)) + x for x in ids])


@torch.no_grad()
def _rollouts(
    policy: Any,
    tokenizer: Any,
    prompt_ids: list[list[int]],
    max_new_tokens: int,
    temperature: float,
    samples: int,
    seed: int,
    batch_size: int,
) -> list[tuple[torch.Tensor, int]]:
    """Sample responses as PPO does; returns ``(query_response, context_length)`` batches."""
    from transformers import GenerationConfig

    _trl_ppo()
    from trl.experimental.ppo.ppo_trainer import generate, truncate_response

    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    if temperature and temperature > 0:
        gen = dict(do_sample=True, temperature=temperature + 1e-7, top_k=0, top_p=1.0)
    else:
        gen = dict(do_sample=False)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad, **gen
    )
    flat = [p for p in prompt_ids for _ in range(samples)]
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(flat), batch_size):
            queries = _left_pad(flat[start : start + batch_size], pad).to(policy.device)
            context = queries.shape[1]
            qr, _ = generate(policy, queries, pad, config)
            response = truncate_response(eos, pad, qr[:, context:])
            out.append((torch.cat((queries, response), 1), context))
    return out


@torch.no_grad()
def _scores(
    reward_model: Any, batches: list[tuple[torch.Tensor, int]], pad_id: int
) -> torch.Tensor:
    from trl.experimental.utils import get_reward

    return torch.cat([get_reward(reward_model, qr, pad_id, ctx)[1] for qr, ctx in batches])


@torch.no_grad()
def _response_logprobs(model: Any, qr: torch.Tensor, ctx: int, pad_id: int) -> torch.Tensor:
    from trl.experimental.ppo.ppo_trainer import forward
    from trl.trainer.utils import selective_log_softmax

    out: Any = forward(model, qr, pad_id)
    logits = out.logits[:, ctx - 1 : -1]
    return selective_log_softmax(logits.float(), qr[:, ctx:])


@torch.no_grad()
def _kl(policy: Any, ref: Any, batches: list[tuple[torch.Tensor, int]], pad_id: int) -> float:
    """Mean over responses of sum over response tokens of ``log p_policy - log p_ref``.

    ``ref=None``: the policy is a peft model and its reference is itself with the adapter off."""
    totals = []
    for qr, ctx in batches:
        mask = qr[:, ctx:] != pad_id
        if ref is None:
            with policy.disable_adapter():
                ref_lp = _response_logprobs(policy, qr, ctx, pad_id)
        else:
            ref_lp = _response_logprobs(ref, qr, ctx, pad_id)
        diff = _response_logprobs(policy, qr, ctx, pad_id) - ref_lp
        totals.append((diff * mask).sum(1))
    return torch.cat(totals).mean().item()


def mean_reward(
    reward_path: Path | Any,
    policy_path_or_model: Path | Any,
    prompts: list[Messages],
    tokenizer: Any = None,
    max_new_tokens: int = 64,
    temperature: float = 0.7,
    samples_per_prompt: int = 4,
    seed: int = 0,
    max_prompt_length: int = 1024,
    batch_size: int = 32,
) -> float:
    """Mean reward-model score of the policy's sampled (fixed seed) or greedy responses.

    Responses are generated and truncated after EOS exactly as in PPO rollouts and scored with
    TRL's ``get_reward`` on ``prompt + response``. ``temperature=0`` means greedy decoding.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from .store import load_tokenizer

    if tokenizer is None:
        src = policy_path_or_model
        tokenizer = load_tokenizer(Path(src if isinstance(src, str | Path) else src.name_or_path))
    policy = _as_model(policy_path_or_model, AutoModelForCausalLM)
    reward = _as_model(reward_path, AutoModelForSequenceClassification)
    ids = tokenize_prompts(tokenizer, prompts, max_prompt_length)
    batches = _rollouts(
        policy, tokenizer, ids, max_new_tokens, temperature, samples_per_prompt, seed, batch_size
    )
    return _scores(reward, batches, tokenizer.pad_token_id).mean().item()


def _load_models(
    policy_path: Path, reward_path: Path, cfg: PPORunConfig, place: Placement
) -> tuple[Any, ...]:
    """Tokenizer, policy, reference (None with LoRA: the policy with its adapter disabled),
    reward and value models; with LoRA the value model trains only LoRA layers and its head."""
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        set_seed,
    )

    from .lora import ensure_merged, inject
    from .store import load_tokenizer

    ensure_merged(policy_path)
    ensure_merged(reward_path)
    tok = load_tokenizer(policy_path, padding_side="left")
    rm_tok = load_tokenizer(reward_path, padding_side="left")
    if rm_tok.get_vocab() != tok.get_vocab() or rm_tok.pad_token_id != tok.pad_token_id:
        raise ValueError("policy and reward model must share one tokenizer")
    set_seed(cfg.seed)
    # LoRA on a GPU: frozen weights in bf16/fp16; full fine-tunes keep fp32 master weights
    base_dtype = place.torch_dtype if cfg.lora_r and place.is_gpu else torch.float32
    frozen_dtype = place.torch_dtype if place.is_gpu else torch.float32
    policy = AutoModelForCausalLM.from_pretrained(policy_path, dtype=base_dtype)
    ref = None
    if not cfg.lora_r:
        ref = AutoModelForCausalLM.from_pretrained(policy_path, dtype=frozen_dtype)
    reward = AutoModelForSequenceClassification.from_pretrained(
        reward_path, num_labels=1, dtype=frozen_dtype
    )
    value = AutoModelForSequenceClassification.from_pretrained(
        reward_path, num_labels=1, dtype=base_dtype
    )
    if cfg.lora_r:
        value = inject(value, cfg, value.config.model_type)
    for m in (ref, reward):
        if m is not None:
            m.eval()
            m.requires_grad_(False)
    for m in (policy, ref, reward, value):
        if m is not None:
            m.config.pad_token_id = tok.pad_token_id
    policy.generation_config.pad_token_id = tok.pad_token_id
    return tok, policy, ref, reward, value


def train_ppo(
    policy_path: Path,
    reward_path: Path,
    train_prompts: list[Messages],
    heldout_prompts: list[Messages],
    out_dir: Path,
    cfg: PPORunConfig | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    place: Placement | None = None,
    save: bool = True,
) -> dict[str, Any]:
    """Run PPO on ``train_prompts`` and save the new policy (model + tokenizer) to ``out_dir``.

    The value model is initialised from the reward model; the reference policy is a frozen copy
    of the starting policy; all four share the policy's tokenizer. Held-out reward is the mean
    reward-model score of ``cfg.eval_samples_per_prompt`` fixed-seed samples per held-out prompt,
    before and after training; ``kl_to_ref`` is the mean summed per-token log-prob difference
    (policy - reference) on the post-training held-out samples.

    Returns ``heldout_reward_before``, ``heldout_reward_after``, ``kl_to_ref``, ``n_train``,
    ``n_heldout`` and ``curves`` (per PPO step: ``step, reward, kl, rlhf_reward, entropy, ...``).
    Raises :class:`Cancelled` (writing nothing) if ``should_stop()`` becomes true.
    """
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback

    from .lora import lora_config, save_adapter
    from .store import save_atomically

    PPOTrainer = _trl_ppo().PPOTrainer

    cfg = cfg or PPORunConfig()
    out_dir = Path(out_dir)
    if save and out_dir.exists():
        raise FileExistsError(f"refusing to overwrite {out_dir}")
    batch = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
    if len(train_prompts) < batch:
        raise ValueError(f"need at least {batch} training prompts, got {len(train_prompts)}")
    if should_stop is not None and should_stop():
        raise Cancelled("cancelled before start")

    place = place or Placement("cpu", "float32")
    tok, policy, ref, reward, value = _load_models(Path(policy_path), Path(reward_path), cfg, place)
    peft_config = lora_config(cfg, policy.config.model_type, "CAUSAL_LM")
    original_gen_config = copy.deepcopy(policy.generation_config)
    eval_temp = cfg.temperature if cfg.eval_temperature is None else cfg.eval_temperature
    heldout_ids = tokenize_prompts(tok, heldout_prompts, cfg.max_prompt_length)

    def heldout(model: Any) -> tuple[float, list]:
        model.eval()
        batches = _rollouts(
            model, tok, heldout_ids, cfg.response_length, eval_temp,
            cfg.eval_samples_per_prompt, cfg.seed + 1, 32,
        )  # fmt: skip
        return _scores(reward, batches, tok.pad_token_id).mean().item(), batches

    before = heldout(policy)[0] if heldout_ids else float("nan")
    train_ids = tokenize_prompts(tok, train_prompts, cfg.max_prompt_length)
    callback = ProgressCallback(progress, should_stop, hard_stop=True)
    with tempfile.TemporaryDirectory(prefix="prefloop-ppo-") as tmp:
        trainer = PPOTrainer(
            args=ppo_config(cfg, tmp, place),
            processing_class=tok,
            model=policy,
            ref_model=ref,
            peft_config=peft_config,
            reward_model=reward,
            value_model=value,
            train_dataset=Dataset.from_dict({"input_ids": train_ids}),
            eval_dataset=Dataset.from_dict({"input_ids": heldout_ids or train_ids[:1]}),
            callbacks=[callback],
        )
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    if callback.stopped:
        raise Cancelled("training cancelled")
    policy = trainer.accelerator.unwrap_model(trainer.model).policy
    policy.generation_config = original_gen_config
    if heldout_ids:
        after, batches = heldout(policy)
        kl = _kl(policy, ref, batches, tok.pad_token_id)
    else:
        after = kl = float("nan")
    if should_stop is not None and should_stop():
        raise Cancelled("training cancelled")
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    if save and peft_config is not None:
        info = {"kind": "policy", "r": cfg.lora_r, "pad_token_id": tok.pad_token_id}
        save_adapter(policy, tok, policy_path, out_dir, info)
    elif save:
        save_atomically(policy, tok, out_dir)
    curves = [
        {"step": h["step"], **{new: h[old] for old, new in CURVE_KEYS.items() if old in h}}
        for h in callback.history
        if "objective/scores" in h
    ]
    return {
        "heldout_reward_before": before,
        "heldout_reward_after": after,
        "kl_to_ref": kl,
        "n_train": len(train_ids),
        "n_heldout": len(heldout_ids),
        "trainable_params": trainable,
        "lora_r": cfg.lora_r,
        "curves": curves,
    }
