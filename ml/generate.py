"""Text generation backends: a local transformers model or a remote OpenAI-compatible server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import torch

from .device import Placement

Messages = list[dict[str, str]]


@dataclass
class GenerationParams:
    """Sampling parameters shared by all generators."""

    max_new_tokens: int = field(default=128, metadata={"help": "Maximum number of new tokens."})
    temperature: float = field(
        default=0.8, metadata={"help": "Sampling temperature; 0 means greedy decoding."}
    )
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling probability mass."})
    seed: int | None = field(
        default=None, metadata={"help": "Seed for reproducible sampling; None for random."}
    )


class Generator(Protocol):
    """What the app needs from a generation backend. `stop`, when given, is checked between
    tokens: once it is set, generation ends early (the client went away)."""

    def generate(
        self, prompts: list[Messages], n: int, params: GenerationParams
    ) -> list[list[str]]: ...

    def complete(
        self, messages: Messages, params: GenerationParams, stop: threading.Event | None = None
    ) -> tuple[str, dict]: ...

    def stream(
        self, messages: Messages, params: GenerationParams, stop: threading.Event | None = None
    ) -> Iterator[str]: ...


@cache
def _stop_on_event() -> type:
    from transformers import StoppingCriteria

    class StopOnEvent(StoppingCriteria):
        """Ends every sequence of the batch once `event` is set; checked after each new token."""

        def __init__(self, event: threading.Event) -> None:
            self.event = event

        def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
            stopped = self.event.is_set()
            return torch.full((input_ids.shape[0],), stopped, device=input_ids.device)

    return StopOnEvent


def stopping(stop: threading.Event | None) -> dict[str, Any]:
    """`model.generate` keyword arguments that end generation once `stop` is set."""
    if stop is None:
        return {}
    from transformers import StoppingCriteriaList

    return {"stopping_criteria": StoppingCriteriaList([_stop_on_event()(stop)])}


class LocalGenerator:
    """Generate with a local causal LM directory (model + tokenizer), loaded once, thread-safe."""

    def __init__(
        self, path: Path | str, batch_size: int = 32, place: Placement | None = None
    ) -> None:
        from transformers import AutoModelForCausalLM

        from .lora import ensure_merged
        from .store import load_tokenizer

        self.path = Path(path)
        self.batch_size = batch_size
        self.place = place or Placement("cpu", "float32")
        ensure_merged(self.path)  # a LoRA version generates from its merged copy
        self.tokenizer = load_tokenizer(self.path, padding_side="left")
        model: Any = AutoModelForCausalLM.from_pretrained(self.path, dtype=self.place.torch_dtype)
        self.model = model.to(self.place.device)
        self.model.eval()
        self._lock = threading.Lock()

    def _encode(self, prompts: list[Messages]) -> dict[str, torch.Tensor]:
        return self.tokenizer.apply_chat_template(
            prompts,
            add_generation_prompt=True,
            padding=True,
            return_tensors="pt",
            return_dict=True,
        ).to(self.model.device)

    def _gen_kwargs(self, params: GenerationParams) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self.tokenizer.eos_token_id,
        }
        if params.temperature and params.temperature > 0:
            kw.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kw

    def _run(
        self, prompts: list[Messages], params: GenerationParams, stop: threading.Event | None = None
    ) -> tuple[list[str], int, int]:
        """Generate one completion per prompt; returns texts, prompt tokens, completion tokens."""
        texts: list[str] = [""] * len(prompts)
        n_prompt = n_completion = 0
        kw = self._gen_kwargs(params) | stopping(stop)
        # batch by length: similar prompts pad little (on a GPU, padding is most of the waste)
        order = list(range(len(prompts)))
        if len(prompts) > self.batch_size:
            order.sort(key=lambda i: self._length(prompts[i]))
        for start in range(0, len(prompts), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = self._encode([prompts[i] for i in idx])
            with torch.no_grad():
                out = self.model.generate(**enc, **kw)
            new = out[:, enc["input_ids"].shape[1] :]
            n_prompt += int(enc["attention_mask"].sum())
            ends = (new == self.tokenizer.pad_token_id) | (new == self.tokenizer.eos_token_id)
            lengths = torch.where(ends.any(1), ends.int().argmax(1), new.shape[1])
            n_completion += int(lengths.sum())
            decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            for i, text in zip(idx, decoded, strict=True):
                texts[i] = text
        return texts, n_prompt, n_completion

    def _length(self, messages: Messages) -> int:
        return len(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True))

    def generate(
        self, prompts: list[Messages], n: int, params: GenerationParams
    ) -> list[list[str]]:
        """Return ``n`` sampled completions (new text only) for each prompt, batched."""
        flat = [p for p in prompts for _ in range(n)]
        with self._lock:
            if params.seed is not None:
                torch.manual_seed(params.seed)
            texts, _, _ = self._run(flat, params)
        return [texts[i * n : (i + 1) * n] for i in range(len(prompts))]

    def complete(
        self, messages: Messages, params: GenerationParams, stop: threading.Event | None = None
    ) -> tuple[str, dict]:
        """One completion plus OpenAI-style usage counts."""
        with self._lock:
            if params.seed is not None:
                torch.manual_seed(params.seed)
            texts, n_prompt, n_completion = self._run([messages], params, stop)
        usage = {
            "prompt_tokens": n_prompt,
            "completion_tokens": n_completion,
            "total_tokens": n_prompt + n_completion,
        }
        return texts[0], usage

    def stream(
        self, messages: Messages, params: GenerationParams, stop: threading.Event | None = None
    ) -> Iterator[str]:
        """Yield text deltas as they are generated (generation runs in a background thread)."""
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600
        )
        enc = self._encode([messages])
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with self._lock:
                    if params.seed is not None:
                        torch.manual_seed(params.seed)
                    with torch.no_grad():
                        kw = self._gen_kwargs(params) | stopping(stop)
                        self.model.generate(**enc, **kw, streamer=streamer)
            except BaseException as exc:  # surfaced to the consumer below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        for delta in streamer:
            if delta:
                yield delta
        thread.join()
        if errors:
            raise errors[0]


class RemoteGenerator:
    """Generate through an OpenAI-compatible ``/v1/chat/completions`` endpoint."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout: float = 120.0,
        transport: Any = None,
    ) -> None:
        import httpx

        base = base_url.rstrip("/")
        self.url = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def _body(self, messages: Messages, params: GenerationParams, seed: int | None) -> dict:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if seed is not None:
            body["seed"] = seed
        return body

    def _post(self, body: dict) -> dict:
        resp = self._client.post(self.url, json=body)
        resp.raise_for_status()
        return resp.json()

    def generate(
        self, prompts: list[Messages], n: int, params: GenerationParams
    ) -> list[list[str]]:
        """``n`` completions per prompt via repeated single-sample calls (portable)."""
        out: list[list[str]] = []
        for messages in prompts:
            samples = []
            for i in range(n):
                seed = None if params.seed is None else params.seed + i
                data = self._post(self._body(messages, params, seed))
                samples.append(data["choices"][0]["message"]["content"] or "")
            out.append(samples)
        return out

    def complete(
        self, messages: Messages, params: GenerationParams, stop: threading.Event | None = None
    ) -> tuple[str, dict]:
        """One completion plus the server's usage dict. With `stop`, the completion is streamed
        from the server so that the connection can be closed (ending the generation there)."""
        if stop is None:
            data = self._post(self._body(messages, params, params.seed))
            return data["choices"][0]["message"]["content"] or "", dict(data.get("usage") or {})
        parts: list[str] = []
        usage: dict = {}
        for chunk in self._chunks(messages, params, stop, include_usage=True):
            usage = dict(chunk.get("usage") or usage)
            choices = chunk.get("choices") or [{}]
            parts.append((choices[0].get("delta") or {}).get("content") or "")
        return "".join(parts), usage

    def stream(
        self, messages: Messages, params: GenerationParams, stop: threading.Event | None = None
    ) -> Iterator[str]:
        """Yield text deltas from the server's SSE stream."""
        for chunk in self._chunks(messages, params, stop):
            choices = chunk.get("choices") or [{}]
            delta = (choices[0].get("delta") or {}).get("content")
            if delta:
                yield delta

    def _chunks(
        self,
        messages: Messages,
        params: GenerationParams,
        stop: threading.Event | None,
        include_usage: bool = False,
    ) -> Iterator[dict]:
        """The server's SSE chunks; leaving early (or `stop` set) closes the upstream stream."""
        body = self._body(messages, params, params.seed) | {"stream": True}
        if include_usage:
            body["stream_options"] = {"include_usage": True}
        with self._client.stream("POST", self.url, json=body) as resp:
            if resp.is_error:
                resp.read()  # so that the error carries the server's message
            resp.raise_for_status()
            for line in resp.iter_lines():
                if stop is not None and stop.is_set():
                    return  # closing the response drops the connection: the server stops too
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                yield json.loads(payload)

    def close(self) -> None:
        self._client.close()


def make_generator(
    path: str,
    name: str,
    *,
    backend: str = "transformers",
    base_url: str = "",
    api_key: str | None = None,
    model: str = "",
    place: Placement | None = None,
) -> LocalGenerator | RemoteGenerator:
    """The generator for one model version, as both the worker and `/v1` build it: local
    transformers on `place`, or an external OpenAI-compatible server (`backend="openai"`,
    asked for `model`, else the version name). ValueError when the external one has no URL."""
    if backend == "openai":
        if not base_url:
            raise ValueError("generation_backend=openai needs PREFLOOP_GENERATION_BASE_URL")
        return RemoteGenerator(base_url, api_key, model or name)
    return LocalGenerator(path, place=place)


def generator_for_settings(
    path: str, name: str, settings: Any, place: Placement | None = None
) -> LocalGenerator | RemoteGenerator:
    """`make_generator` from the app's settings (``generation_backend``, ``_base_url``,
    ``_api_key``, ``_model``): the one mapping the worker and `/v1` both use."""
    return make_generator(
        path,
        name,
        backend=settings.generation_backend,
        base_url=settings.generation_base_url,
        api_key=settings.generation_api_key,
        model=settings.generation_model,
        place=place,
    )
