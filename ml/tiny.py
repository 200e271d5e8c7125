"""Offline builder for a tiny chat-capable causal LM used by tests and benchmarks.

The model is a 2-layer GPT-2 with a byte-level BPE tokenizer trained on built-in sentences and
a ChatML-style chat template. It is briefly warmed up on built-in dialogues so that it emits
short chat-like replies ending with ``<|im_end|>`` (its EOS). Everything is deterministic and
takes a couple of seconds on a laptop CPU.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

#: bump when the produced artefact changes, invalidates caches
TINY_VERSION = 1
_MARKER = "prefloop_tiny.json"

PAD, EOS, IM_START = "<|pad|>", "<|im_end|>", "<|im_start|>"

#: assistant turns end with EOS and nothing after it, so reward models trained on templated
#: conversations score the same last token as PPO (which truncates responses at EOS)
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

PROMPTS = [
    "Hello, how are you?",
    "Can you help me with my homework?",
    "What is the weather like today?",
    "Tell me a joke.",
    "Where is the station?",
    "Could you recommend a book?",
    "What time is it?",
    "How do I cook rice?",
    "Can you explain gravity?",
    "What should I eat tonight?",
    "How do I fix my bike?",
    "Is it going to rain?",
]
REPLIES = [
    "Thank you for asking, I am happy to help.",
    "Sure, please let me explain it step by step.",
    "Go away, I do not care.",
    "That is a silly question.",
    "Please take the bus, it is close to the park.",
    "Thanks, I would recommend a short novel.",
    "No. Figure it out yourself.",
    "Of course, thank you, here is a simple answer.",
    "Whatever, ask someone else.",
    "Please boil the water first, then add the rice.",
    "I am glad you asked, thank you.",
    "Stop bothering me.",
]


def _train_tokenizer(vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS, IM_START],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(PROMPTS + REPLIES + ["user", "assistant", "system"], trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS,
        bos_token=IM_START,
        unk_token=None,
        padding_side="left",
        model_max_length=512,
    )
    hf_tok.chat_template = CHAT_TEMPLATE
    return hf_tok


def _dialogues() -> list[list[dict[str, str]]]:
    return [
        [{"role": "user", "content": p}, {"role": "assistant", "content": REPLIES[(i + j) % 12]}]
        for i, p in enumerate(PROMPTS)
        for j in range(0, 12, 3)
    ]


def _build(dest: Path, seed: int, warmup_steps: int) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-identical weights whatever the machine (and faster here)
    try:
        with torch.random.fork_rng(devices=[]):
            _build_locked(dest, seed, warmup_steps)
    finally:
        torch.set_num_threads(threads)


def _build_locked(dest: Path, seed: int, warmup_steps: int) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    tok = _train_tokenizer()
    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=512,
        n_embd=64,
        n_layer=2,
        n_head=2,
        n_inner=128,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    model = GPT2LMHeadModel(config)
    if warmup_steps:
        texts = [tok.apply_chat_template(d, tokenize=False) for d in _dialogues()]
        enc = tok(texts, padding=True, return_tensors="pt", padding_side="right")
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        model.train()
        for _ in range(warmup_steps):
            out = model(**enc, labels=labels)
            out.loss.backward()
            opt.step()
            opt.zero_grad()
    model.eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    model.save_pretrained(dest)
    tok.save_pretrained(dest)


def build_tiny_policy(dest: Path, seed: int = 0, warmup_steps: int = 60) -> Path:
    """Build (or reuse) a tiny GPT-2 chat policy with its tokenizer at ``dest``.

    Idempotent and safe under concurrent callers: the model is built in a temporary sibling
    directory and renamed into place; an existing ``dest`` built with the same version, seed and
    warm-up is reused as is. Returns ``dest``.
    """
    dest = Path(dest)
    meta = {"version": TINY_VERSION, "seed": seed, "warmup_steps": warmup_steps}
    marker = dest / _MARKER
    if marker.is_file() and json.loads(marker.read_text()) == meta:
        return dest
    if dest.exists():
        if any(dest.iterdir()):
            raise FileExistsError(f"{dest} exists and is not a tiny policy built with {meta}")
        dest.rmdir()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        _build(tmp, seed, warmup_steps)
        (tmp / _MARKER).write_text(json.dumps(meta))
        try:
            os.rename(tmp, dest)
        except OSError:  # lost a race with another builder: keep theirs if it is complete
            if not (marker.is_file() and json.loads(marker.read_text()) == meta):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
