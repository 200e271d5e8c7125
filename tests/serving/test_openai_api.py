"""The OpenAI-compatible endpoint, exercised with the official `openai` client over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.conftest import LiveServer
from tests.factories import auth, make_user
from tests.workers.support import store_tiny, wait_for

HELLO = [{"role": "user", "content": "Hello, how are you?"}]


@pytest.fixture
def server() -> Iterator[LiveServer]:
    s = LiveServer(
        env={"PREFLOOP_SERVING_RELOAD_SECONDS": "0.5", "PREFLOOP_SERVING_MAX_TOKENS": "64"}
    )
    s.start()
    yield s
    s.stop()


def _client(server: LiveServer, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=token, max_retries=0, timeout=300)


def test_chat_plain_and_streaming(server, tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    _, name = store_tiny(tiny_policy_dir)
    client = _client(server, make_user("dev", "researcher"))
    assert {m.id for m in client.models.list()} == {name, "prefloop-policy"}
    kw = {"messages": HELLO, "max_tokens": 16, "temperature": 0}
    plain = client.chat.completions.create(model="prefloop-policy", **kw)
    text = plain.choices[0].message.content
    assert plain.model == name and text and plain.choices[0].finish_reason in ("stop", "length")
    assert plain.usage.prompt_tokens > 0 and 0 < plain.usage.completion_tokens <= 16
    chunks = list(client.chat.completions.create(model=name, stream=True, **kw))
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "".join(deltas).strip() == text.strip()  # greedy: same text either way
    sampled = client.chat.completions.create(
        model=name, messages=HELLO, max_tokens=8, temperature=1.0, seed=3, n=2
    )
    assert len(sampled.choices) == 2


def test_auth_and_bad_requests(server, tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    store_tiny(tiny_policy_dir)
    token = make_user("lab")
    with pytest.raises(openai.AuthenticationError):
        _client(server, "not-a-token").models.list()
    r = httpx.post(server.url + "/v1/chat/completions", json={"messages": HELLO})
    assert r.status_code == 401
    assert httpx.get(server.url + "/v1/models").status_code == 401
    with pytest.raises(openai.NotFoundError, match="not served here"):
        _client(server, token).chat.completions.create(model="gpt-4", messages=HELLO)
    # the official client reads prefloop's errors: the cap, and validation (seed beyond 64 bits)
    with pytest.raises(openai.BadRequestError, match="at most 64") as capped:
        _client(server, token).chat.completions.create(
            model="prefloop-policy", messages=HELLO, max_tokens=65
        )
    assert capped.value.body["param"] == "max_tokens"
    with pytest.raises(openai.UnprocessableEntityError):
        _client(server, token).chat.completions.create(
            model="prefloop-policy", messages=HELLO, seed=2**70
        )
    r = httpx.post(
        server.url + "/v1/chat/completions",
        json={"messages": [], "max_tokens": 0},
        headers=auth(token),
    )
    assert r.status_code == 422


def test_no_policy_yet(client) -> None:  # type: ignore[no-untyped-def]
    token = make_user("lab")
    r = client.get("/v1/models", headers=auth(token))
    assert r.status_code == 200 and r.json()["data"] == []
    r = client.post("/v1/chat/completions", json={"messages": HELLO}, headers=auth(token))
    assert r.status_code == 404 and "no active policy" in r.json()["error"]["message"]


def test_activation_switches_serving_without_failing_requests(server, tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    _, name1 = store_tiny(tiny_policy_dir)
    v2, name2 = store_tiny(tiny_policy_dir, activate=False)
    admin = make_user("boss", "admin")
    client = _client(server, admin)
    assert name1 in {m.id for m in client.models.list()}
    errors: list[BaseException] = []
    done = threading.Event()

    def traffic() -> None:  # requests keep flowing while the pointer flips
        while not done.is_set():
            try:
                out = client.chat.completions.create(
                    model="prefloop-policy", messages=HELLO, max_tokens=8, stream=True
                )
                assert list(out)[-1].choices[0].finish_reason == "stop"
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
            time.sleep(0.05)

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        r = httpx.post(
            f"{server.url}/api/v1/models/{v2}/activate", headers=auth(admin), timeout=120
        )
        assert r.status_code == 200, r.text
        wait_for(lambda: name2 in {m.id for m in client.models.list()}, 120, "serving to switch")
        time.sleep(1)
    finally:
        done.set()
        thread.join(120)
    assert not errors, errors
    reply = client.chat.completions.create(model=name2, messages=HELLO, max_tokens=4)
    assert reply.model == name2
