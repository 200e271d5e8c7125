"""What each kind of bad input gets: a clear 4xx with a message, never a 500 (docs/bad-input.md)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from app.db import session_scope
from app.models import ApiToken, Assignment, Judgment, ModelVersion, Prompt, utcnow
from tests.factories import auth, make_tasks, make_user

SUBMIT = "/api/v1/tasks/{}/judgments"


def _leased(client, token: str) -> dict:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/tasks/next", headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


def _ranking(task: dict) -> list[list[int]]:
    return [[c["id"]] for c in task["candidates"]]


def _judgments() -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(Judgment)) or 0


def _login(client, name: str) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = client.post(
        "/login",
        data={"name": name, "password": "password123", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


# --- malformed bodies ---------------------------------------------------------------------------


def test_malformed_json_is_422_with_location(client):
    alice = make_user("alice")
    (task_id,) = make_tasks(1)
    r = client.post(
        SUBMIT.format(task_id),
        content=b'{"ranking": [[1], [2]',
        headers={**auth(alice), "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"


def test_body_that_is_not_utf8_is_400(client):
    alice = make_user("alice")
    (task_id,) = make_tasks(1)
    r = client.post(
        SUBMIT.format(task_id),
        content=b"\x80\xc3(",
        headers={**auth(alice), "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert "parsing the body" in r.json()["detail"]


def test_wrong_types_and_unknown_fields_are_422_naming_the_field(client):
    alice = make_user("alice")
    make_tasks(1)
    task = _leased(client, alice)
    url, h = SUBMIT.format(task["task_id"]), auth(alice)
    cases = {
        "ranking": {"ranking": "first"},
        "choice": {"choice": "c"},
        "time_spent_ms": {"choice": "a", "time_spent_ms": -5},
        "ratings": {"choice": "a", "ratings": {"helpfulness": "great"}},
        "colour": {"choice": "a", "colour": "red"},
    }
    for field, body in cases.items():
        r = client.post(url, json=body, headers=h)
        assert r.status_code == 422, (field, r.text)
        assert field in {str(part) for e in r.json()["detail"] for part in e["loc"]}, r.text
    assert _judgments() == 0


def test_well_typed_but_invalid_judgments_are_422_with_a_message(client):
    alice = make_user("alice")
    make_tasks(1, k=3)
    task = _leased(client, alice)
    url, h = SUBMIT.format(task["task_id"]), auth(alice)
    ids = [c["id"] for c in task["candidates"]]
    cases = {
        "exactly one of": {"ranking": [[i] for i in ids], "choice": "a"},
        "exactly once": {"ranking": [[ids[0]], [ids[1]]]},
        "more than once": {"ranking": [[ids[0]], [ids[0]], [ids[1]], [ids[2]]]},
        "must not be empty": {"ranking": [[ids[0]], [], [ids[1], ids[2]]]},
        "only for tasks with 2": {"choice": "a"},
        "unknown rating criterion": {"ranking": [ids], "ratings": {"wit": 3}},
        "between 1 and 5": {"ranking": [ids], "ratings": {"helpfulness": 9}},
        "unknown flag": {"ranking": [ids], "flags": ["boring"]},
    }
    for message, body in cases.items():
        r = client.post(url, json=body, headers=h)
        assert r.status_code == 422 and message in r.json()["detail"], (message, r.text)
    assert _judgments() == 0


def test_nul_characters_are_422_not_a_database_error(client):
    alice = make_user("alice")
    make_tasks(1)
    task = _leased(client, alice)
    r = client.post(
        SUBMIT.format(task["task_id"]),
        json={"choice": "a", "rationale": "fine\u0000"},
        headers=auth(alice),
    )
    assert r.status_code == 422 and "NUL" in r.text
    r = client.post(
        f"/api/v1/tasks/{task['task_id']}/skip", json={"reason": "\u0000"}, headers=auth(alice)
    )
    assert r.status_code == 422 and "NUL" in r.text


# --- huge bodies --------------------------------------------------------------------------------


def test_huge_body_is_413_before_it_is_read(client):
    alice = make_user("alice")
    (task_id,) = make_tasks(1)
    big = b'{"rationale": "' + b"x" * 1_100_000 + b'"}'
    r = client.post(
        SUBMIT.format(task_id),
        content=big,
        headers={**auth(alice), "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


def test_huge_chunked_body_without_length_is_413(client):
    alice = make_user("alice")
    (task_id,) = make_tasks(1)

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 50_000

    r = client.post(
        SUBMIT.format(task_id),
        content=chunks(),
        headers={**auth(alice), "Content-Type": "application/json"},
    )
    assert r.status_code == 413


def test_overlong_field_is_422(client):
    alice = make_user("alice")
    make_tasks(1)
    task = _leased(client, alice)
    r = client.post(
        SUBMIT.format(task["task_id"]),
        json={"choice": "a", "rationale": "x" * 20_001},
        headers=auth(alice),
    )
    assert r.status_code == 422 and "rationale" in r.text


# --- unknown ids --------------------------------------------------------------------------------


def test_unknown_and_impossible_task_ids(client):
    alice = make_user("alice")
    make_tasks(1)
    h = auth(alice)
    assert client.post(SUBMIT.format(999_999), json={"choice": "a"}, headers=h).status_code == 404
    for bad in ("abc", "0", str(2**31), str(2**70)):
        r = client.post(SUBMIT.format(bad), json={"choice": "a"}, headers=h)
        assert r.status_code == 422, (bad, r.text)
    r = client.post("/api/v1/tasks/999999/skip", json={}, headers=h)
    assert r.status_code == 409 and "no lease" in r.json()["detail"]


def test_judging_a_task_never_assigned_is_409(client):
    alice = make_user("alice")
    (task_id,) = make_tasks(1)
    r = client.post(SUBMIT.format(task_id), json={"choice": "a"}, headers=auth(alice))
    assert r.status_code == 409 and "never assigned" in r.json()["detail"]


def test_judging_a_skipped_task_is_409(client):
    alice = make_user("alice")
    make_tasks(1)
    task = _leased(client, alice)
    r = client.post(f"/api/v1/tasks/{task['task_id']}/skip", json={"reason": "unclear"},
                    headers=auth(alice))  # fmt: skip
    assert r.status_code == 204
    r = client.post(SUBMIT.format(task["task_id"]), json={"choice": "a"}, headers=auth(alice))
    assert r.status_code == 409 and "skipped" in r.json()["detail"]


# --- expired leases and resubmits ---------------------------------------------------------------


def test_expired_lease_accepted_while_needed_then_409_once_full(client):
    alice, bob = make_user("alice"), make_user("bob")
    make_tasks(1, required=1)
    late = _leased(client, alice)
    with session_scope() as s:
        s.execute(update(Assignment).values(expires_at=utcnow() - timedelta(seconds=1)))
    taken = _leased(client, bob)
    assert taken["task_id"] == late["task_id"]
    assert client.post(SUBMIT.format(taken["task_id"]), json={"ranking": _ranking(taken)},
                       headers=auth(bob)).status_code == 201  # fmt: skip
    r = client.post(SUBMIT.format(late["task_id"]), json={"ranking": _ranking(late)},
                    headers=auth(alice))  # fmt: skip
    assert r.status_code == 409 and "not stored" in r.json()["detail"]
    assert _judgments() == 1


def test_resubmit_is_200_with_the_stored_judgment(client):
    alice = make_user("alice")
    make_tasks(1)
    task = _leased(client, alice)
    url = SUBMIT.format(task["task_id"])
    first = client.post(url, json={"choice": "a"}, headers=auth(alice))
    again = client.post(url, json={"choice": "b"}, headers=auth(alice))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() and _judgments() == 1


# --- identity and role --------------------------------------------------------------------------


def test_missing_malformed_and_revoked_credentials_are_401(client):
    alice = make_user("alice")
    r = client.get("/api/v1/tasks/next")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = client.get("/api/v1/tasks/next", headers={"Authorization": "Basic YWxpY2U6eA=="})
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    r = client.get("/api/v1/tasks/next", headers=auth("pfl_not-a-real-token"))
    assert r.status_code == 401 and "invalid" in r.json()["detail"]
    with session_scope() as s:
        s.execute(update(ApiToken).values(revoked=True))
    r = client.get("/api/v1/tasks/next", headers=auth(alice))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_wrong_role_is_403_naming_the_role(client):
    alice = make_user("alice")
    rita = make_user("rita", "researcher")
    r = client.get("/api/v1/users", headers=auth(alice))
    assert r.status_code == 403 and "admin" in r.json()["detail"]
    r = client.get("/api/v1/tasks/next", headers=auth(rita))
    assert r.status_code == 403 and "labeler" in r.json()["detail"]
    r = client.post("/api/v1/import/comparisons", content=b"{}", headers=auth(alice))
    assert r.status_code == 403


# --- CSRF ---------------------------------------------------------------------------------------


def test_form_post_without_csrf_token_is_403(client):
    make_user("alice")
    client.get("/login")  # a session exists, but the form field is missing
    r = client.post("/login", data={"name": "alice", "password": "password123"})
    assert r.status_code == 403 and "CSRF" in r.text
    _login(client, "alice")
    r = client.post("/logout", data={}, follow_redirects=False)
    assert r.status_code == 403 and "CSRF" in r.text


def test_cookie_authenticated_json_write_without_csrf_header_is_403(client):
    make_user("alice")
    make_tasks(1)
    _login(client, "alice")
    task = client.get("/api/v1/tasks/next").json()  # reads need no CSRF header
    r = client.post(SUBMIT.format(task["task_id"]), json={"choice": "a"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    assert _judgments() == 0


# --- imports ------------------------------------------------------------------------------------


def test_bad_import_file_is_422_with_line_numbers_and_imports_nothing(client):
    admin = make_user("root", "admin")
    body = b'{"prompt": "ok", "completions": ["a", "b"]}\nnot json\n{"prompt": "x"}\n'
    r = client.post(
        "/api/v1/import/comparisons",
        content=body,
        headers={**auth(admin), "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 422, r.text
    lines = [e["line"] for e in r.json()["errors"]]
    assert 2 in lines and 3 in lines and 1 not in lines
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Prompt)) == 0


# --- inputs that gave 500s (issue 11, point 7) --------------------------------------------------


def test_v1_seed_beyond_64_bits_is_422(client):
    lab = make_user("lab")
    body = {"messages": [{"role": "user", "content": "hi"}], "seed": 2**70}
    r = client.post("/v1/chat/completions", json=body, headers=auth(lab))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "seed", r.text
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_export_filter_with_a_non_ascii_digit_is_422(client):
    rita = auth(make_user("rita", "researcher"))
    for path in ("/api/v1/exports/preview", "/api/v1/exports/preferences"):
        r = client.get(path, params={"model_version": "²"}, headers=rita)
        assert r.status_code == 422 and "unknown model version" in r.json()["detail"], r.text
    r = client.get("/research", params={"model_version": "²", "preview": 1}, headers=rita)
    assert r.status_code == 422 and "unknown model version" in r.text


def _nested(depth: int) -> bytes:
    return b'{"prompt": ' + b"[" * depth + b"]" * depth + b"}"


def test_import_line_nested_50000_levels_is_a_line_numbered_422(client):
    admin = auth(make_user("root", "admin"))
    ndjson = {**admin, "content-type": "application/x-ndjson"}
    body = b'{"prompt": "fine"}\n' + _nested(50_000) + b"\n"
    r = client.post("/api/v1/import/prompts", content=body, headers=ndjson)
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"line": 2, "message": "invalid JSON: nested too deeply"}]
    rows = b'{"prompt": "q", "chosen": "a", "rejected": "b"}\n' + _nested(50_000) + b"\n"
    r = client.post("/api/v1/import/preferences?source=s", content=rows, headers=ndjson)
    assert r.status_code == 422 and r.json()["errors"][0]["line"] == 2, r.text
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Prompt)) == 0


def test_csv_header_completion_superscript_and_long_fields(client):
    admin = auth(make_user("root", "admin"))
    csv_type = {**admin, "content-type": "text/csv"}
    bad = "prompt,completion_1,completion_²\nq,a,b\n".encode()
    r = client.post("/api/v1/import/comparisons", content=bad, headers=csv_type)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["line"] == 1 and "completion_N" in r.json()["errors"][0]["message"]
    long_text = "x" * 200_000  # csv's own field limit is 128 KB; a long prompt is legitimate
    good = f'prompt,completion_1,completion_2\n"{long_text}",a,b\n'.encode()
    r = client.post("/api/v1/import/comparisons", content=good, headers=csv_type)
    assert r.status_code == 201 and r.json()["tasks_created"] == 1, r.text
    with session_scope() as s:
        assert s.scalar(select(Prompt.messages))[0]["content"] == long_text


def test_admin_ids_beyond_int4_are_422(client):
    admin = auth(make_user("root", "admin"))
    huge = "99999999999999999999"
    assert client.get(f"/admin/runs/{huge}", headers=admin).status_code == 422
    assert client.get("/admin/runs/2147483648", headers=admin).status_code == 422
    assert client.get("/admin/runs/2147483647", headers=admin).status_code == 404
    for path in (f"/admin/runs/{huge}/cancel", f"/admin/models/{huge}/activate"):
        assert client.post(path, data={"csrf_token": "x"}, headers=admin).status_code == 422


def test_nul_in_the_login_name_is_422(client):
    make_user("alice")
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = client.post(
        "/login",
        data={"name": "ali\u0000ce", "password": "password123", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 422 and "NUL" in r.text
    _login(client, "alice")  # the form still works


def test_nul_in_an_import_source_is_422(client):
    admin = auth(make_user("root", "admin"))
    rows = b'{"prompt": "q", "chosen": "a", "rejected": "b"}\n'
    r = client.post(
        "/api/v1/import/preferences",
        params={"source": "hh\u0000x"},
        content=rows,
        headers={**admin, "content-type": "application/x-ndjson"},
    )
    assert r.status_code == 422 and "NUL" in r.text
    nul_row = b'{"prompt": "q", "chosen": "a\\u0000", "rejected": "b"}\n'
    r = client.post(
        "/api/v1/import/preferences?source=hh",
        content=rows + nul_row,
        headers={**admin, "content-type": "application/x-ndjson"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["line"] == 2, r.text
    assert "NUL" in r.json()["errors"][0]["message"]


def test_duplicate_flags_are_422(client):
    alice = make_user("alice")
    make_tasks(1)
    task = _leased(client, alice)
    r = client.post(
        SUBMIT.format(task["task_id"]),
        json={"choice": "a", "flags": ["toxic", "dangerous", "toxic"]},
        headers=auth(alice),
    )
    assert r.status_code == 422 and "more than once" in r.json()["detail"], r.text
    assert _judgments() == 0


# --- no internals in error bodies (issue 11, point 11) -------------------------------------------


def test_readyz_does_not_show_the_database_error(client):
    from sqlalchemy.ext.asyncio import create_async_engine

    working = client.app.state.engine
    client.app.state.engine = create_async_engine(
        "sqlite+aiosqlite:////nonexistent-prefloop-dir/secret-name.db"
    )
    try:
        r = client.get("/readyz")
    finally:
        client.app.state.engine = working
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "database": "unreachable"}
    assert client.get("/readyz").status_code == 200


def test_v1_errors_do_not_show_exception_text(client, tiny_policy_dir):
    from tests.workers.support import store_tiny

    _, name = store_tiny(tiny_policy_dir)
    with session_scope() as s:
        path = s.scalar(select(ModelVersion.path).where(ModelVersion.version == name))
    for weights in Path(path).glob("*.safetensors"):
        weights.write_bytes(b"not weights")  # the active policy can no longer load
    lab = make_user("lab")
    r = client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers=auth(lab),
    )
    assert r.status_code == 404, r.text
    message = r.json()["error"]["message"]
    assert message.startswith("cannot load") and message.endswith("; see the server log")
    assert "header" not in r.text and "safetensors" not in r.text and path not in r.text
