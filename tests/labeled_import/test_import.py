"""Importing labeled preferences: HF row variants, OpenAssistant trees, errors, idempotency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import _discover, root
from app.db import session_scope
from app.labeled_import import parsers
from app.models import ComparisonTask, Completion, Judgment, Prompt, TaskCandidate, TaskStatus
from app.prompts.parsing import FileErrors
from tests.factories import auth, make_user

_discover()
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
# ../shared/data beside the checkout (or beside the worktrees' folder)
OASST = next(
    (
        p / "shared" / "data" / "oasst_en_100_tree.jsonl"
        for p in (ROOT.parent, ROOT.parent.parent)
        if (p / "shared" / "data" / "oasst_en_100_tree.jsonl").is_file()
    ),
    ROOT.parent / "shared" / "data" / "oasst_en_100_tree.jsonl",
)
HH = "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Name a color."


def jsonl(*rows: object) -> bytes:
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def bot(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def counts() -> tuple[int, int]:
    with session_scope() as session:
        return (
            session.scalar(select(func.count()).select_from(ComparisonTask)) or 0,
            session.scalar(select(func.count()).select_from(Judgment)) or 0,
        )


def test_hf_variants_recover_prompts() -> None:
    fmt, recs = parsers.parse(
        jsonl(
            {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
            {"chosen": "Rome is the capital of Italy", "rejected": "Rome is the capital of Peru"},
            {"chosen": HH + "\n\nAssistant: Blue.", "rejected": HH + "\n\nAssistant: No."},
            {
                "chosen": [user("2+2?"), bot("4")],
                "rejected": [user("2+2?"), bot("5")],
            },
            {
                "prompt": [{"role": "user", "content": "Hi"}],
                "chosen": [{"role": "assistant", "content": "Hello"}],
                "rejected": [{"role": "assistant", "content": "Go away"}],
            },
        )
    )  # fmt: skip
    assert fmt == "hf"
    explicit, implicit, hh, conv, conv_explicit = recs
    assert (explicit.messages[0]["content"], explicit.completions) == (
        "The sky is",
        ["blue.", "green."],
    )
    assert not explicit.is_chat and explicit.ranking == [[0], [1]]
    assert implicit.messages == [{"role": "user", "content": "Rome is the capital of"}]
    assert implicit.completions == ["Italy", "Peru"]
    assert hh.is_chat and [m["role"] for m in hh.messages] == ["user", "assistant", "user"]
    assert hh.messages[2]["content"] == "Name a color." and hh.completions == ["Blue.", "No."]
    assert conv.messages == [{"role": "user", "content": "2+2?"}] and conv.completions == ["4", "5"]
    assert conv_explicit.completions == ["Hello", "Go away"]


def test_malformed_file_rejected_whole_with_line_numbers(tmp_path: Path) -> None:
    good = {"prompt": "q", "chosen": "a", "rejected": "b"}
    data = (
        jsonl(good).decode()
        + "{not json\n\n"
        + json.dumps({"prompt": "q", "chosen": "a"}) + "\n"
        + json.dumps({"prompt": "q", "chosen": "same", "rejected": "same"}) + "\n"
        + json.dumps({"chosen": "abc", "rejected": "xyz"}) + "\n"
    )  # fmt: skip
    f = tmp_path / "bad.jsonl"
    f.write_text(data)
    with pytest.raises(FileErrors) as e:
        parsers.parse(f.read_bytes(), "hf")
    assert [n for n, _ in e.value.errors] == [2, 4, 5, 6]  # every bad line at once
    assert "invalid JSON" in e.value.errors[0][1]
    f.write_text(data.replace("{not json\n", ""))
    with pytest.raises(FileErrors) as e:
        parsers.parse(f.read_bytes(), "hf")
    assert [n for n, _ in e.value.errors] == [3, 4, 5]
    assert "share no prefix" in e.value.errors[2][1]
    r = runner.invoke(root, ["import", "preferences", str(f), "--source", "x"])
    assert r.exit_code == 1 and "bad.jsonl:3:" in r.output and "nothing was imported" in r.output
    assert counts() == (0, 0)


def test_unknown_format_is_reported() -> None:
    with pytest.raises(FileErrors) as e:
        parsers.parse(jsonl({"question": "x"}))
    assert e.value.errors[0][0] == 1 and "format" in e.value.errors[0][1]


def test_api_import_is_idempotent_and_tasks_never_offered(client) -> None:  # type: ignore[no-untyped-def]
    admin = auth(make_user("root", "admin"))
    data = jsonl(
        {"prompt": "q1", "chosen": "a", "rejected": "b"},
        {"prompt": "q1", "chosen": "b", "rejected": "a"},
        {"prompt": "q2", "chosen": "c", "rejected": "d"},
    )
    url = "/api/v1/import/preferences?source=hh-sample"
    first = client.post(url, content=data, headers=admin)
    assert first.status_code == 201, first.text
    assert first.json()["judgments_created"] == 3 and first.json()["tasks_created"] == 2
    again = client.post(url, content=data, headers=admin).json()
    assert (again["judgments_created"], again["already_present"]) == (0, 3)
    assert counts() == (2, 3)
    with session_scope() as session:
        tasks = session.scalars(select(ComparisonTask).order_by(ComparisonTask.id)).all()
        assert [(t.status, t.judgment_count, t.required_judgments) for t in tasks] == [
            (TaskStatus.complete, 2, 2),
            (TaskStatus.complete, 1, 1),
        ]
        judgments = session.scalars(select(Judgment)).all()
        assert {(j.user_id, j.source) for j in judgments} == {(None, "hh-sample")}
        assert {c.source for c in session.scalars(select(Completion))} == {"hh-sample"}
    labeler = auth(make_user("lara"))
    assert client.get("/api/v1/tasks/next", headers=labeler).status_code == 204
    bad = client.post(url, content=b'{"prompt": 1}\n', headers=admin)
    assert bad.status_code == 422 and bad.json()["errors"][0]["line"] == 1
    assert client.post(url, content=data, headers=labeler).status_code == 403


@pytest.mark.skipif(not OASST.is_file(), reason=f"{OASST} not present")
def test_oasst_trees_become_kwise_rankings(tmp_path: Path) -> None:
    trees = [json.loads(line) for line in OASST.read_text().splitlines() if line.strip()]
    r = runner.invoke(root, ["import", "preferences", str(OASST), "--source", "oasst"])
    assert r.exit_code == 0, r.output
    tasks, judgments = counts()
    assert tasks == judgments > 100
    first = trees[0]["prompt"]
    ranked = sorted(
        (x for x in first["replies"] if x.get("rank") is not None), key=lambda x: x["rank"]
    )
    with session_scope() as session:
        j = session.scalar(select(Judgment).where(Judgment.external_id == first["message_id"]))
        assert j is not None and j.user_id is None and j.source == "oasst"
        task = session.get_one(ComparisonTask, j.task_id)
        prompt = session.get_one(Prompt, task.prompt_id)
        assert prompt.is_chat and prompt.messages == [
            {"role": "user", "content": first["text"].strip()}
        ]
        best = session.get_one(Completion, j.ranking[0][0])
        assert best.text == ranked[0]["text"].strip()
        assert len([c for g in j.ranking for c in g]) == len(ranked)
        cands = set(
            session.scalars(
                select(TaskCandidate.completion_id).where(TaskCandidate.task_id == task.id)
            )
        )
        assert cands == {c for g in j.ranking for c in g}
        deeper = session.scalars(select(Prompt)).all()
        assert any(len(p.messages) >= 3 and p.messages[1]["role"] == "assistant" for p in deeper)
        assert all(t.status == TaskStatus.complete for t in session.scalars(select(ComparisonTask)))
    r = runner.invoke(root, ["import", "preferences", str(OASST), "--source", "oasst"])
    assert r.exit_code == 0 and f"0 judgments created, {judgments} already present" in r.output
    assert counts() == (tasks, judgments)


def test_empty_final_replies_are_data(client) -> None:  # type: ignore[no-untyped-def]
    """Public preference sets (HH-RLHF among them) hold rows whose chosen or rejected reply is
    empty: the model said nothing. Those rows import; only identical replies are refused."""
    fmt, recs = parsers.parse(
        jsonl(
            {"chosen": HH + "\n\nAssistant:", "rejected": HH + "\n\nAssistant: No."},
            {"prompt": "Say nothing", "chosen": "", "rejected": "Something"},
            {"chosen": [user("hi"), bot("hello")], "rejected": [user("hi"), bot("")]},
        )
    )
    assert fmt == "hf"
    assert [r.completions for r in recs] == [["", "No."], ["", "Something"], ["hello", ""]]
    assert recs[0].messages[-1] == {"role": "user", "content": "Name a color."}
    with pytest.raises(FileErrors) as e:
        parsers.parse(jsonl({"prompt": "q", "chosen": " ", "rejected": ""}))
    assert "same reply" in e.value.errors[0][1]
    admin = auth(make_user("root", "admin"))
    data = jsonl({"prompt": "Say nothing", "chosen": "", "rejected": "Something"})
    r = client.post("/api/v1/import/preferences?source=hh", content=data, headers=admin)
    assert r.status_code == 201 and r.json()["judgments_created"] == 1, r.text
    with session_scope() as session:
        assert sorted(c.text for c in session.scalars(select(Completion))) == ["", "Something"]


def test_skip_invalid_imports_good_rows_and_writes_rejects(tmp_path: Path) -> None:
    f = tmp_path / "prefs.jsonl"
    f.write_bytes(
        jsonl(
            {"prompt": "q1", "chosen": "a", "rejected": "b"},
            {"prompt": "q2", "chosen": "same", "rejected": "same"},
            {"prompt": "q3", "chosen": "c", "rejected": "d"},
        )
        + b"[[[\n"
    )
    r = runner.invoke(root, ["import", "preferences", str(f), "--source", "x"])
    assert r.exit_code == 1 and "nothing was imported" in r.output and counts() == (0, 0)
    r = runner.invoke(root, ["import", "preferences", str(f), "--source", "x", "--skip-invalid"])
    assert r.exit_code == 0, r.output
    assert "2 tasks and 2 judgments created" in r.output and "2 line(s) skipped" in r.output
    rejects = (tmp_path / "prefs.jsonl.rejects.jsonl").read_text().splitlines()
    assert [json.loads(x)["line"] for x in rejects] == [2, 4]
    assert json.loads(rejects[1])["text"] == "[[["
    assert counts() == (2, 2)
