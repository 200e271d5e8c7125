"""LoRA (peft) for reward and policy runs: configs with per-architecture defaults, adapter
storage with a pointer to its base, and the merged copy that generation and /v1 load.

A LoRA version directory holds ``adapter/`` (peft's ``save_pretrained``: adapter weights and
``adapter_config.json`` whose ``base_model_name_or_path`` points at the base version dir) and
``lora.json``. :func:`ensure_merged` writes the merged full model into the same directory the
first time something needs to load it (activation, a PPO or generate run naming it), so
``vllm serve <version dir>`` and ``from_pretrained(<version dir>)`` keep working. The adapter
stays for lineage.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .store import staging_dir

ADAPTER_DIR = "adapter"
MARKER = "lora.json"

#: attention projections per ``config.model_type``; unknown types fall back to peft's own map
TARGETS: dict[str, list[str]] = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "phi3": ["qkv_proj", "o_proj"],
    "gpt2": ["c_attn", "c_proj"],
    "gpt_neox": ["query_key_value", "dense"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj"],
}


def target_modules(model_type: str, given: list[str] | None = None) -> list[str] | None:
    """The modules to adapt: the run's list, else the architecture default (None: peft's)."""
    return list(given) if given else TARGETS.get(model_type)


def lora_config(cfg: Any, model_type: str, task_type: str) -> Any:
    """A ``peft.LoraConfig`` from a run's ``lora_*`` parameters; None when ``lora_r`` is 0."""
    if not getattr(cfg, "lora_r", 0):
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha or 2 * cfg.lora_r,
        lora_dropout=cfg.lora_dropout,
        target_modules=target_modules(model_type, cfg.lora_target_modules),
        task_type=task_type,
    )


def inject(model: Any, cfg: Any, model_type: str, task_type: str = "SEQ_CLS") -> Any:
    """Add LoRA layers to ``model`` in place (module structure unchanged) and train only them
    and the score head. Used for PPO's value model, which TRL's trainer does not wrap."""
    from peft import inject_adapter_in_model

    config = lora_config(cfg, model_type, task_type)
    if config is None:
        return model
    model = inject_adapter_in_model(config, model)
    for name, param in model.named_parameters():
        param.requires_grad = "lora_" in name or name.startswith("score.")
    return model


def is_adapter_only(path: Path | str) -> bool:
    path = Path(path)
    return (path / MARKER).exists() and not (path / "config.json").exists()


def save_adapter(peft_model: Any, tokenizer: Any, base: Path | str, dest: Path, info: dict) -> Path:
    """Write an adapter version (``adapter/``, tokenizer, ``lora.json``) atomically to ``dest``."""
    dest = Path(dest)
    tmp = staging_dir(dest)
    try:
        peft_model.save_pretrained(tmp / ADAPTER_DIR)
        cfg_path = tmp / ADAPTER_DIR / "adapter_config.json"
        adapter_cfg = json.loads(cfg_path.read_text())
        adapter_cfg["base_model_name_or_path"] = str(Path(base).resolve())
        cfg_path.write_text(json.dumps(adapter_cfg, indent=2))
        tokenizer.save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps({"base": str(Path(base).resolve()), **info}))
        os.chmod(tmp, 0o755)
        os.rename(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _load_merged(path: Path, dtype: Any) -> Any:
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    info = json.loads((path / MARKER).read_text())
    ensure_merged(info["base"])  # a LoRA version may start from another LoRA version
    pc = PeftConfig.from_pretrained(str(path / ADAPTER_DIR))
    if pc.task_type == "SEQ_CLS":
        base = AutoModelForSequenceClassification.from_pretrained(
            info["base"], num_labels=1, dtype=dtype
        )
    else:
        base = AutoModelForCausalLM.from_pretrained(info["base"], dtype=dtype)
    if info.get("pad_token_id") is not None:
        base.config.pad_token_id = info["pad_token_id"]
    return PeftModel.from_pretrained(base, path / ADAPTER_DIR).merge_and_unload()


def ensure_merged(path: Path | str) -> bool:
    """Write the merged full model into an adapter version dir once; True if it merged now.

    Safe with several processes: a file lock serializes them, files land via a temporary
    sibling and ``config.json`` comes last (a dir with ``config.json`` is complete)."""
    import torch

    path = Path(path)
    if not is_adapter_only(path):
        return False
    with open(path / MARKER, "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (path / "config.json").exists():
            return False
        merged = _load_merged(path, torch.float32)
        tmp = Path(tempfile.mkdtemp(prefix=".merge-", dir=path))
        try:
            merged.save_pretrained(tmp)
            files = sorted(tmp.iterdir(), key=lambda p: p.name == "config.json")
            for f in files:  # config.json last
                os.replace(f, path / f.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return True
