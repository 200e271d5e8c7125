"""`prefloop import preferences --format arena`: a hand-written FastChat battle log becomes
tasks, judgments and battles; bad lines are reported by number and nothing is half-written."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from app.arena import service as arena
from app.cli import _discover, root
from app.db import session_scope
from app.models import Battle, ComparisonTask, Judgment, TaskStatus
from tests.factories import auth, make_user

_discover()
runner = CliRunner()


def u(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def b(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def battle(qid: str, a: str, bb: str, winner: str, q: str, ra: str, rb: str, **extra) -> dict:  # type: ignore[no-untyped-def]
    return {"question_id": qid, "model_a": a, "model_b": bb, "winner": winner,
            "conversation_a": [u(q), b(ra)], "conversation_b": [u(q), b(rb)], "turn": 1,
            "anony": True, "language": "English", "tstamp": 1700000000.5, **extra}  # fmt: skip


LOG = [
    battle("q1", "vicuna-13b", "alpaca-13b", "model_a", "Name a prime.", "7", "Nine."),
    battle("q2", "alpaca-13b", "vicuna-13b", "model_b", "Capital of France?", "Lyon", "Paris"),
    battle("q3", "vicuna-13b", "koala-13b", "tie", "Say hi.", "Hi!", "Hello!"),
    battle("q4", "koala-13b", "alpaca-13b", "tie (bothbad)", "2+2?", "5", "22"),
    {  # a second turn: both sides share the first exchange
        "question_id": "q5", "model_a": "koala-13b", "model_b": "vicuna-13b",
        "winner": "model_b", "tstamp": 1700000001,
        "conversation_a": [u("Hi"), b("Hello"), u("Tell a joke"), b("No.")],
        "conversation_b": [u("Hi"), b("Hello"), u("Tell a joke"), b("Why did the ...")],
    },
]  # fmt: skip


def _write(tmp_path: Path, rows: list, extra: str = "") -> Path:
    f = tmp_path / "battles.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n" + extra)
    return f


def test_cli_imports_a_battle_log(tmp_path: Path) -> None:
    f = _write(tmp_path, LOG)
    r = runner.invoke(root, ["import", "preferences", str(f), "--format", "arena"])
    assert r.exit_code == 0, r.output
    assert "5 arena comparisons" in r.output and "5 battles" in r.output
    with session_scope() as s:
        battles = {x.model_a + "|" + x.model_b: x for x in s.scalars(select(Battle))}
        assert len(battles) == 5 and all(x.source == "battles" for x in battles.values())
        tasks = s.scalars(select(ComparisonTask)).all()
        assert all(t.status == TaskStatus.complete for t in tasks)  # never offered to labelers
        choices = sorted(j.choice for j in s.scalars(select(Judgment)))
        assert choices == ["a", "b", "b", "both_bad", "tie"]
        outs = sorted(arena.outcomes(s))
    assert outs == sorted([
        ("vicuna-13b", "alpaca-13b", 1.0),
        ("alpaca-13b", "vicuna-13b", 0.0),
        ("vicuna-13b", "koala-13b", 0.5),
        ("koala-13b", "alpaca-13b", 0.5),
        ("koala-13b", "vicuna-13b", 0.0),
    ])  # fmt: skip
    # auto-detected, and importing again adds nothing
    r = runner.invoke(root, ["import", "preferences", str(f)])
    assert r.exit_code == 0 and "5 already present" in r.output, r.output
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Battle)) == 5
        multi = s.scalar(select(Battle).where(Battle.model_a == "koala-13b",
                                              Battle.model_b == "vicuna-13b"))  # fmt: skip
        task = s.get(ComparisonTask, multi.task_id)  # type: ignore[union-attr]
        from app.models import Prompt

        assert len(s.get(Prompt, task.prompt_id).messages) == 3  # type: ignore[union-attr]


def test_bad_lines_are_numbered_and_nothing_is_written(tmp_path: Path) -> None:
    bad = [
        LOG[0],
        {**LOG[1], "winner": "model_c"},
        {**LOG[2], "model_b": ""},
        {**LOG[3], "conversation_b": [u("other"), b("x")]},
        {**LOG[0], "conversation_b": LOG[0]["conversation_a"]},
        {**LOG[0], "model_b": LOG[0]["model_a"]},
        {**LOG[0], "conversation_a": [u("Name a prime.")]},
    ]
    f = _write(tmp_path, bad, "not json\n")
    r = runner.invoke(root, ["import", "preferences", str(f), "--format", "arena"])
    assert r.exit_code != 0
    for line, words in [(2, "winner"), (3, "model_b"), (4, "differ before"), (5, "same reply"),
                        (6, "must differ"), (7, "must end with"), (8, "")]:  # fmt: skip
        assert f"line {line}" in r.output or f":{line}:" in r.output, (line, r.output)
        assert words in r.output
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Battle)) == 0
        assert s.scalar(select(func.count()).select_from(Judgment)) == 0
    r = runner.invoke(
        root, ["import", "preferences", str(f), "--format", "arena", "--skip-invalid"]
    )
    assert r.exit_code == 0, r.output
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Battle)) == 1


def test_api_import_and_leaderboard(client) -> None:
    admin = auth(make_user("root", "admin"))
    body = "\n".join(json.dumps(r) for r in LOG) + "\n"
    r = client.post("/api/v1/import/preferences?source=lmsys&format=arena", content=body,
                    headers={**admin, "content-type": "application/x-ndjson"})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["battles_created"] == 5
    board = client.get("/api/v1/arena/leaderboard", headers=admin).json()
    assert board["battles"] == 5
    assert {x["model"] for x in board["ratings"]} == {"vicuna-13b", "alpaca-13b", "koala-13b"}
    assert board["ratings"][0]["model"] == "vicuna-13b"
