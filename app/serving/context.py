"""What a /v1 request may ask for: the server's caps and the model's context window.

The prompt is counted with the served model's own tokenizer and chat template (the in-process
generator's, or for an external server the tokenizer in the active version's directory, when
there is one). Without a tokenizer the external server is left to refuse over-long prompts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.serving.engine import Loaded, Target

log = logging.getLogger("prefloop.serving")

# a tokenizer's model_max_length of 1e30 means "not set"
_UNSET = 10**9


class RequestTooLarge(ValueError):
    """The request cannot be served as asked (HTTP 400); `param` names the field."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Window:
    tokenizer: Any | None
    context: int | None  # prompt + completion tokens the model can hold


_windows: dict[Target, Window] = {}


def _context_of(config: Any, tokenizer: Any) -> int | None:
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, attr, None) if config is not None else None
        if isinstance(value, int) and 0 < value < _UNSET:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < _UNSET else None


def _load_window(loaded: Loaded) -> Window:
    generator = loaded.generator
    tokenizer = getattr(generator, "tokenizer", None)
    model = getattr(generator, "model", None)
    config = getattr(model, "config", None)
    if tokenizer is None and loaded.target.path and Path(loaded.target.path).is_dir():
        # an external server serving the active version: count with that version's tokenizer
        try:
            from transformers import AutoConfig

            from ml.store import load_tokenizer

            tokenizer = load_tokenizer(Path(loaded.target.path))
            config = AutoConfig.from_pretrained(loaded.target.path)
        except Exception:  # noqa: BLE001 -- no tokenizer: the server checks lengths itself
            log.warning("cannot load the tokenizer of %s", loaded.target.name, exc_info=True)
            tokenizer = config = None
    return Window(tokenizer, _context_of(config, tokenizer) if tokenizer is not None else None)


def window(loaded: Loaded) -> Window:
    """The tokenizer and context length of the served model (cached per served version)."""
    found = _windows.get(loaded.target)
    if found is None:
        found = _load_window(loaded)
        if len(_windows) > 8:
            _windows.clear()
        _windows[loaded.target] = found
    return found


def prompt_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    """Tokens of the templated prompt, as the generator will feed it."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return len(ids)


def plan(
    loaded: Loaded,
    messages: list[dict[str, str]],
    asked: int | None,
    settings: Settings,
) -> tuple[int, int | None]:
    """(max_new_tokens, prompt tokens or None when not counted) for a request, or
    RequestTooLarge. Runs in a thread: tokenizing a long prompt is real work."""
    if asked is not None and asked > settings.serving_max_tokens:
        raise RequestTooLarge(
            f"max_tokens is {asked}, but this server allows at most {settings.serving_max_tokens}",
            "max_tokens",
        )
    win = window(loaded)
    context = settings.serving_context_tokens or win.context
    if win.tokenizer is None or context is None:
        return (asked or min(settings.max_new_tokens, settings.serving_max_tokens)), None
    n_prompt = prompt_tokens(win.tokenizer, messages)
    room = context - n_prompt
    if asked is not None:
        if asked > room:
            raise RequestTooLarge(
                f"this model's context is {context} tokens; the messages take {n_prompt} and "
                f"max_tokens asks for {asked} more ({n_prompt + asked} in all). Shorten the "
                "messages or lower max_tokens.",
                "messages" if room < 1 else "max_tokens",
            )
        return asked, n_prompt
    if room < 1:
        raise RequestTooLarge(
            f"this model's context is {context} tokens; the messages alone take {n_prompt}. "
            "Shorten the messages.",
            "messages",
        )
    return min(settings.max_new_tokens, settings.serving_max_tokens, room), n_prompt
