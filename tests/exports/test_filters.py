"""Filters that reach into tasks and candidates: tags, candidate sources, model versions."""

from __future__ import annotations

import json

import pytest

from app.db import session_scope
from app.models import ModelKind, ModelStatus, ModelVersion
from app.prompts import parsing, store
from tests.exports.helpers import candidates, judge
from tests.factories import auth, make_user

URL = "/api/v1/exports/preferences"


@pytest.fixture
def tasks() -> list[int]:
    """Task 0 tagged math with candidates from policy-v1; task 1 untagged, from a 'human' source."""
    with session_scope() as session:
        session.add(
            ModelVersion(
                version="policy-v1",
                kind=ModelKind.policy,
                status=ModelStatus.ready,
                path="/tmp/none",
            )  # fmt: skip
        )
        session.flush()
        lines = [
            {"prompt": [{"role": "user", "content": "2+2?"}], "tags": ["math"],
             "completions": [{"text": "4", "source": "policy-v1"},
                             {"text": "5", "source": "policy-v1"}]},
            {"prompt": "Say hi", "completions": [{"text": "hi", "source": "human"}, "yo"]},
        ]  # fmt: skip
        data = "\n".join(json.dumps(x) for x in lines).encode()
        records = parsing.parse(data, "comparisons", "jsonl")
        mv = {"policy-v1": session.query(ModelVersion.id).scalar()}
        _, ids = store.import_comparisons(session, records, 1, model_version_ids=mv)
    make_user("alice")
    for tid in ids:
        a, b = candidates(tid)
        judge(tid, "alice", [[a], [b]], "a")
    return ids


def _rows(client, headers, **params) -> list[dict]:  # type: ignore[no-untyped-def]
    resp = client.get(URL, params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return [json.loads(line) for line in resp.text.splitlines()]


@pytest.mark.parametrize("shape", ["trl", "raw", "rankings"])
def test_tag_source_and_version_filters(client, tasks, shape) -> None:  # type: ignore[no-untyped-def]
    h = auth(make_user("rita", "researcher"))

    def ids(**params) -> list[int]:  # type: ignore[no-untyped-def]
        return sorted({r["task_id"] for r in _rows(client, h, shape=shape, **params)})

    assert ids() == sorted(tasks)
    assert ids(tag="math") == [tasks[0]]
    assert ids(tag="false") == []
    assert ids(tag="math,other") == [tasks[0]]
    assert ids(source="human") == [tasks[1]]
    assert ids(model_version="policy-v1") == [tasks[0]]
    assert ids(model_version="policy-v1", tag="math", source="policy-v1") == [tasks[0]]


def test_model_version_reported_per_candidate_and_chat_makes_trl_conversational(  # type: ignore[no-untyped-def]
    client, tasks
) -> None:
    h = auth(make_user("rita", "researcher"))
    raw = _rows(client, h, shape="raw", tag="math")
    assert {c["model_version"] for c in raw[0]["candidates"]} == {"policy-v1"}
    trl = _rows(client, h)
    # one chat prompt selected: every row is conversational, the plain prompt as a user message
    assert [r["prompt"] for r in trl] == [
        [{"role": "user", "content": "2+2?"}],
        [{"role": "user", "content": "Say hi"}],
    ]
    assert trl[1]["chosen"] == [{"role": "assistant", "content": "hi"}]
    plain = _rows(client, h, source="human")
    assert plain[0]["prompt"] == "Say hi" and plain[0]["chosen"] == " hi"
