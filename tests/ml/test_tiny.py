"""The offline tiny policy builder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ml.tiny import build_tiny_policy


def _digest(path: Path) -> str:
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def test_tiny_policy_loads_and_chats(tiny_policy_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_policy_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_policy_dir)
    assert tok.pad_token_id is not None and tok.eos_token_id is not None
    assert tok.pad_token_id != tok.eos_token_id
    assert tok.padding_side == "left"
    msgs = [{"role": "user", "content": "Héllo 🙂, how are you?"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text  # byte-level: any text round-trips
    assert model.config.vocab_size == len(tok)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000


def test_tiny_policy_is_deterministic_and_reused(tmp_path: Path, tiny_policy_dir: Path) -> None:
    other = build_tiny_policy(tmp_path / "again")
    assert _digest(other) == _digest(tiny_policy_dir)
    mtime = (other / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_policy(other) == other  # cached: not rebuilt
    assert (other / "model.safetensors").stat().st_mtime_ns == mtime
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_tiny_policy_refuses_foreign_dir(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        build_tiny_policy(tmp_path / "x")
