"""Importing prompts and comparisons: JSONL, CSV, whole-file rejection, idempotence."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import _discover, root
from app.db import session_scope
from app.models import ComparisonTask, Completion, Prompt, TaskCandidate
from tests.factories import auth, make_user

_discover()
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


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


def test_api_imports_parse_and_write_in_a_helper_process(client, monkeypatch):
    """A 200 MB import must not stall other requests: both import routes hand parsing and
    writing to app.ops.offload, which runs them in another process (not even a thread sharing
    the GIL with the event loop)."""
    from app.labeled_import import service as labeled
    from app.ops import offload
    from app.prompts import service as prompts

    real, handed = offload.run, []

    async def spy(app, fn, *args):  # type: ignore[no-untyped-def]
        handed.append(fn)
        return await real(app, fn, *args)

    monkeypatch.setattr(offload, "run", spy)
    admin = auth(make_user("root", "admin"))
    hdr = {**admin, "content-type": "application/x-ndjson"}
    assert client.post("/api/v1/import/comparisons", content=GOOD, headers=hdr).status_code == 201
    rows = b'{"prompt": "q", "chosen": "a", "rejected": "b"}\n'
    r = client.post("/api/v1/import/preferences?source=s", content=rows, headers=hdr)
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/import/prompts", content=b"{oops\n", headers=hdr)
    assert r.status_code == 422 and r.json()["errors"][0]["line"] == 1  # errors cross back
    assert handed == [prompts.import_file, labeled.import_file, prompts.import_file]
    assert asyncio.run(real(client.app, os.getpid)) != os.getpid()
    assert _count(ComparisonTask) == 3  # written by the helper, committed, visible here


def test_the_import_helper_exits_with_its_web_process(tmp_path):
    """Killed with -9, a web process leaves no helper behind."""
    script = (
        "import asyncio, os, sys, time, types\n"
        "from app.ops import offload\n"
        "app = types.SimpleNamespace(state=types.SimpleNamespace(shutdown_hooks=[]))\n"
        "print(asyncio.run(offload.run(app, os.getpid)), flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        helper = int(proc.stdout.readline())  # type: ignore[union-attr]
        os.kill(helper, 0)  # alive
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(helper, 0)
        except ProcessLookupError:
            return
        try:
            os.waitpid(helper, os.WNOHANG)  # not our child: only reaps if re-parented to us
        except ChildProcessError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"helper {helper} outlived its web process")


def test_skip_invalid_imports_good_lines_and_writes_rejects(tmp_path):
    f = tmp_path / "mixed.jsonl"
    bad_utf8 = b'{"prompt": "caf\xe9", "completions": ["a", "b"]}\n'
    f.write_bytes(
        GOOD.encode()
        + b'{"prompt": "ok", "completions": ["only one"]}\n'
        + b"{not json\n"
        + bad_utf8
        + json.dumps({"prompt": "fine too", "completions": ["x", "y"]}).encode()
        + b"\n"
    )
    r = runner.invoke(root, ["import", "comparisons", str(f)])
    assert r.exit_code == 1 and "nothing was imported" in r.output  # all or nothing by default
    assert _count(ComparisonTask) == 0
    r = runner.invoke(root, ["import", "comparisons", str(f), "--skip-invalid"])
    assert r.exit_code == 0, r.output
    assert "3 tasks created" in r.output and "3 line(s) skipped" in r.output
    rejects = [
        json.loads(x) for x in (tmp_path / "mixed.jsonl.rejects.jsonl").read_text().splitlines()
    ]
    assert [(x["line"], x["text"]) for x in rejects] == [
        (3, '{"prompt": "ok", "completions": ["only one"]}'),
        (4, "{not json"),
        (5, bad_utf8.decode("utf-8", "replace").rstrip("\n")),
    ]
    assert "at least 2" in rejects[0]["reason"] and "invalid JSON" in rejects[1]["reason"]
    assert "UTF-8" in rejects[2]["reason"]
    assert _count(ComparisonTask) == 3
    p = tmp_path / "p.csv"
    p.write_text("prompt,tags\nfirst,a\n,b\nthird,c\n")
    r = runner.invoke(root, ["import", "prompts", str(p), "--skip-invalid"])
    assert r.exit_code == 0 and "1 line(s) skipped" in r.output, r.output
    (reject,) = [json.loads(x) for x in (tmp_path / "p.csv.rejects.jsonl").read_text().splitlines()]
    assert reject["line"] == 3 and reject["row"] == {"prompt": "", "tags": "b"}
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text("{nope\n")
    r = runner.invoke(root, ["import", "prompts", str(only_bad), "--skip-invalid"])
    assert r.exit_code == 1 and "nothing was imported" in r.output
    assert (tmp_path / "bad.jsonl.rejects.jsonl").read_text().count("\n") == 1


def test_api_skip_invalid_lists_the_rejected_lines(client):
    admin = auth(make_user("root", "admin"))
    hdr = {"content-type": "application/x-ndjson", **admin}
    body = GOOD + "{oops\n"
    r = client.post("/api/v1/import/comparisons?skip_invalid=true", content=body, headers=hdr)
    assert r.status_code == 201, r.text
    assert r.json()["tasks_created"] == 2 and r.json()["rejected"] == 1
    assert r.json()["rejects"][0]["line"] == 3


def test_line_breaks_inside_json_strings_do_not_split_lines(client):
    """U+2028, U+0085 and form feeds are legal inside JSON strings (str.splitlines() would
    break the line there); CRLF files work too."""
    admin = auth(make_user("root", "admin"))
    text = "one\u2028two\u0085three\x0cfour"
    row = json.dumps({"prompt": text, "completions": ["a\u2029", "b"]}, ensure_ascii=False)
    body = row + "\r\n" + json.dumps({"prompt": "second", "completions": ["c", "d"]}) + "\r\n"
    r = client.post(
        "/api/v1/import/comparisons",
        content=body.encode(),
        headers={"content-type": "application/x-ndjson", **admin},
    )
    assert r.status_code == 201 and r.json()["tasks_created"] == 2, r.text
    with session_scope() as s:
        assert s.scalar(select(Prompt.messages).order_by(Prompt.id))[0]["content"] == text
