"""Local and remote generation backends."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest

from ml.generate import GenerationParams, LocalGenerator, RemoteGenerator, make_generator

PROMPTS = [
    [{"role": "user", "content": "Hello, how are you?"}],
    [{"role": "user", "content": "Tell me a joke."}],
    [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Where is it?"}],
]


@pytest.fixture(scope="module")
def local(tiny_policy_dir: Path) -> LocalGenerator:
    gen = LocalGenerator(tiny_policy_dir, batch_size=4)  # 3 prompts x 3 samples: 3 batches
    return gen


def test_local_generate_n_samples_seeded(local: LocalGenerator) -> None:
    params = GenerationParams(max_new_tokens=16, temperature=1.0, seed=7)
    first = local.generate(PROMPTS, 3, params)
    assert [len(x) for x in first] == [3, 3, 3]
    assert all(isinstance(t, str) for x in first for t in x)
    assert local.generate(PROMPTS, 3, params) == first  # deterministic with a seed
    other = local.generate(PROMPTS, 3, GenerationParams(max_new_tokens=16, temperature=1.0, seed=8))
    assert other != first
    assert not any("<|im_start|>" in t or "assistant" == t[:9] for x in first for t in x)


def test_local_complete_and_stream_agree(local: LocalGenerator) -> None:
    greedy = GenerationParams(max_new_tokens=20, temperature=0)
    text, usage = local.complete(PROMPTS[0], greedy)
    assert text
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 0 < usage["completion_tokens"] <= 20
    deltas = list(local.stream(PROMPTS[0], greedy))
    assert len(deltas) > 1
    assert "".join(deltas).strip() == text.strip()


def test_local_generator_is_thread_safe(local: LocalGenerator) -> None:
    params = GenerationParams(max_new_tokens=8, temperature=0.8, seed=3)
    expected = local.generate(PROMPTS[:2], 2, params)
    results: list = []

    def work() -> None:
        results.append(local.generate(PROMPTS[:2], 2, params))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 3


def _fake_openai(request: httpx.Request) -> httpx.Response:
    assert request.headers["authorization"] == "Bearer k"
    body = json.loads(request.content)
    reply = f"echo:{body['messages'][-1]['content']}:{body.get('seed')}"
    if body.get("stream"):
        chunks = [
            "data: " + json.dumps({"choices": [{"delta": {"content": part}}]}) + "\n\n"
            for part in (reply[:4], reply[4:])
        ]
        return httpx.Response(200, text="".join(chunks) + "data: [DONE]\n\n")
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    return httpx.Response(200, json={"choices": [{"message": {"content": reply}}], "usage": usage})


def test_remote_generator_against_openai_compatible_server() -> None:
    gen = RemoteGenerator("http://srv/v1", "k", "m", transport=httpx.MockTransport(_fake_openai))
    assert gen.url == "http://srv/v1/chat/completions"
    out = gen.generate(PROMPTS[:2], 2, GenerationParams(seed=1))
    assert out == [
        ["echo:Hello, how are you?:1", "echo:Hello, how are you?:2"],
        ["echo:Tell me a joke.:1", "echo:Tell me a joke.:2"],
    ]
    text, usage = gen.complete(PROMPTS[1], GenerationParams())
    assert text == "echo:Tell me a joke.:None" and usage["total_tokens"] == 5
    assert "".join(gen.stream(PROMPTS[1], GenerationParams())) == text


def test_make_generator(tiny_policy_dir: Path) -> None:
    """The one factory the worker and /v1 share: local by default, external by backend."""
    assert isinstance(make_generator(str(tiny_policy_dir), "v1"), LocalGenerator)
    remote = make_generator("/unused", "v1", backend="openai", base_url="http://srv", model="")
    assert isinstance(remote, RemoteGenerator)
    assert remote.url == "http://srv/v1/chat/completions" and remote.model == "v1"
    named = make_generator("/unused", "v1", backend="openai", base_url="http://srv", model="m")
    assert isinstance(named, RemoteGenerator) and named.model == "m"
    with pytest.raises(ValueError, match="BASE_URL"):
        make_generator("/unused", "v1", backend="openai")
