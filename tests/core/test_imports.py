"""Importing prompts and comparisons: JSONL, CSV, whole-file rejection, idempotence."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import _discover, root
from app.db import session_scope
from app.models import ComparisonTask, Completion, Prompt, TaskCandidate
from tests.factories import auth, make_user

_discover()
runner = CliRunner()


def _count(model) -> int:  # type: ignore[no-untyped-def]
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(model))


GOOD = (
    "\n".join(
        json.dumps(r)
        for r in [
            {
                "prompt": "Say hi",
                "completions": ["hi", {"text": "hello", "source": "gpt-x"}],
                "tags": ["greet"],
                "required_judgments": 3,
            },
            {
                "prompt": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "2+2?"},
                ],
                "completions": ["4", "four", "22"],
            },
        ]
    )
    + "\n"
)


def test_cli_import_comparisons_jsonl_is_idempotent(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text(GOOD)
    r = runner.invoke(root, ["import", "comparisons", str(f)])
    assert r.exit_code == 0, r.output
    assert "2 tasks created" in r.output
    r = runner.invoke(root, ["import", "comparisons", str(f)])
    assert r.exit_code == 0 and "0 tasks created" in r.output and "2 already present" in r.output
    assert (_count(Prompt), _count(Completion), _count(ComparisonTask), _count(TaskCandidate)) == (
        2,
        5,
        2,
        5,
    )
    with session_scope() as s:
        chat = s.scalar(select(Prompt).where(Prompt.is_chat))
        assert chat.messages[0] == {"role": "system", "content": "Be brief."}
        src = s.scalar(select(Completion.source).where(Completion.text == "hello"))
        assert src == "gpt-x"
        assert sorted(s.scalars(select(ComparisonTask.required_judgments))) == [1, 3]


def test_cli_malformed_file_rejected_whole_with_line_numbers(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text(
        GOOD
        + '{"prompt": "ok", "completions": ["only one"]}\n{not json\n\n'
        + json.dumps({"prompt": "", "completions": ["a", "b"]})
        + "\n"
        + json.dumps({"prompt": "x", "completions": ["a", "a"]})
        + "\n"
    )
    r = runner.invoke(root, ["import", "comparisons", str(f)])
    assert r.exit_code == 1
    out = r.output
    assert "bad.jsonl:3:" in out and "at least 2 completions" in out
    assert "bad.jsonl:4:" in out and "invalid JSON" in out
    assert "bad.jsonl:6:" in out and "empty" in out
    assert "bad.jsonl:7:" in out and "must differ" in out
    assert "nothing was imported" in out
    assert _count(Prompt) == 0 and _count(ComparisonTask) == 0


def test_cli_import_csv_and_prompts(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text('prompt,completion_1,completion_2,completion_3\n"Multi\nline",a,b,\nQ2,x,y,z\n')
    r = runner.invoke(root, ["import", "comparisons", str(f), "--required-judgments", "2"])
    assert r.exit_code == 0, r.output
    with session_scope() as s:
        ks = sorted(
            s.scalar(select(func.count()).where(TaskCandidate.task_id == t))
            for t in s.scalars(select(ComparisonTask.id))
        )
        assert ks == [2, 3]
        assert set(s.scalars(select(ComparisonTask.required_judgments))) == {2}
        assert (
            s.scalar(select(Prompt).where(Prompt.id == 1)).messages[0]["content"] == "Multi\nline"
        )
    p = tmp_path / "p.jsonl"
    p.write_text('{"prompt": "needs answers", "tags": ["x"]}\n')
    r = runner.invoke(root, ["import", "prompts", str(p)])
    assert r.exit_code == 0, r.output
    with session_scope() as s:
        assert s.scalar(select(Prompt.needs_candidates).where(Prompt.tags != [])) is not None
    bad = tmp_path / "bad.csv"
    bad.write_text("question,completion_1\nx,y\n")
    r = runner.invoke(root, ["import", "comparisons", str(bad)])
    assert r.exit_code == 1 and "bad.csv:1:" in r.output and "'prompt' column" in r.output


def test_api_import_admin_only_and_line_numbered(client):
    admin, labeler = make_user("root", "admin"), make_user("lab")
    url = "/api/v1/import/comparisons"
    hdr = {"content-type": "application/x-ndjson"}
    assert client.post(url, content=GOOD, headers={**hdr, **auth(labeler)}).status_code == 403
    r = client.post(url, content=GOOD + "{oops\n", headers={**hdr, **auth(admin)})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"line": 3, "message": r.json()["errors"][0]["message"]}]
    assert _count(ComparisonTask) == 0
    r = client.post(url + "?required_judgments=2", content=GOOD, headers={**hdr, **auth(admin)})
    assert r.status_code == 201 and r.json()["tasks_created"] == 2
    r = client.post(
        url,
        files={"file": ("c.csv", b"prompt,completion_1,completion_2\nq,a,b\n")},
        headers=auth(admin),
    )
    assert r.status_code == 201 and r.json()["tasks_created"] == 1
    r = client.post(
        "/api/v1/import/prompts", content=b'{"prompt": "p"}\n', headers={**hdr, **auth(admin)}
    )
    assert r.status_code == 201 and r.json()["prompts_created"] == 1
    r = client.post(url, content=b"\xff\xfe", headers={**hdr, **auth(admin)})
    assert r.status_code == 422 and "UTF-8" in r.json()["errors"][0]["message"]


def test_nul_characters_are_refused_with_line_numbers(client):
    admin = make_user("root", "admin")
    body = GOOD + json.dumps({"prompt": "a\u0000b", "completions": ["x", "y"]}) + "\n"
    r = client.post(
        "/api/v1/import/comparisons",
        content=body,
        headers={"content-type": "application/x-ndjson", **auth(admin)},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["line"] == 3 and "NUL" in r.json()["errors"][0]["message"]
    assert _count(Prompt) == 0
