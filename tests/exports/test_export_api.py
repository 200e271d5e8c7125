"""Export API: roles, shapes, filters, ties/both-bad, snapshots and cards."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from app.preferences.pseudonym import labeler_pseudonym
from tests.exports.helpers import candidates, judge, user_id
from tests.factories import auth, make_tasks, make_user

URL = "/api/v1/exports/preferences"


def rows(resp) -> list[dict]:  # type: ignore[no-untyped-def]
    assert resp.status_code == 200, resp.text
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


@pytest.fixture
def researcher() -> dict[str, str]:
    return auth(make_user("rita", "researcher"))


@pytest.fixture
def labeled() -> dict[str, list[int]]:
    """Three tasks judged by alice, bob and carol: agreement, a split, a tie and a both-bad."""
    for name in ("alice", "bob", "carol"):
        make_user(name)
    t = make_tasks(3, k=2, required=3)
    c = {tid: candidates(tid) for tid in t}
    a0, b0 = c[t[0]]
    judge(t[0], "alice", [[a0], [b0]], "a")
    judge(t[0], "bob", [[a0], [b0]], "a")
    judge(t[0], "carol", [[b0], [a0]], "b")
    a1, b1 = c[t[1]]
    judge(t[1], "alice", [[a1, b1]], "tie")
    judge(t[1], "bob", [[b1], [a1]], "b", flags=["toxic"])
    a2, b2 = c[t[2]]
    judge(t[2], "alice", [[a2, b2]], "both_bad", created_at=datetime(2020, 1, 1, tzinfo=UTC))
    return {"tasks": t, **{str(k): v for k, v in c.items()}}


def test_labeler_gets_403_and_anonymous_401(client) -> None:  # type: ignore[no-untyped-def]
    lab = auth(make_user("lara"))
    for path in (URL, "/api/v1/exports/preview", "/api/v1/exports", "/api/v1/exports/1",
                 "/api/v1/exports/agreement", "/api/v1/exports/1/card"):  # fmt: skip
        assert client.get(path, headers=lab).status_code == 403, path
        assert client.get(path).status_code == 401, path


def test_admin_may_export(client, labeled) -> None:  # type: ignore[no-untyped-def]
    admin = auth(make_user("root", "admin"))
    assert client.get(URL, headers=admin).status_code == 200


def test_trl_rows_aggregate_majority(client, researcher, labeled) -> None:  # type: ignore[no-untyped-def]
    t = labeled["tasks"]
    out = rows(client.get(URL, headers=researcher))
    # task 0: 2-1 majority; task 1: tie vs b -> level split, no row; task 2: both bad -> no row
    assert len(out) == 1
    row = out[0]
    a0, b0 = labeled[str(t[0])]
    assert row["prompt"] == "p prompt 0"
    assert row["chosen"] == " p answer 0.0" and row["rejected"] == " p answer 0.1"
    assert (row["chosen_id"], row["rejected_id"], row["votes"]) == (a0, b0, 3)
    assert row["agreement"] == pytest.approx(2 / 3)
    assert "margin" not in row
    with_margin = rows(client.get(URL, params={"margin": "true"}, headers=researcher))
    assert with_margin[0]["margin"] == pytest.approx(1 / 3)
    assert rows(client.get(URL, params={"min_agreement": 0.7}, headers=researcher)) == []


def test_dropping_ties_changes_the_vote(client, researcher, labeled) -> None:  # type: ignore[no-untyped-def]
    t = labeled["tasks"]
    out = rows(client.get(URL, params={"include_ties": "false"}, headers=researcher))
    a1, b1 = labeled[str(t[1])]
    assert [(r["task_id"], r["chosen_id"], r["rejected_id"]) for r in out][1] == (t[1], b1, a1)
    raw = rows(
        client.get(URL, params={"shape": "raw", "include_ties": "false"}, headers=researcher)
    )
    assert all(r["choice"] != "tie" for r in raw) and len(raw) == 5


def test_raw_rows_are_complete_and_pseudonymous(client, researcher, labeled) -> None:  # type: ignore[no-untyped-def]
    out = rows(client.get(URL, params={"shape": "raw"}, headers=researcher))
    assert len(out) == 6
    both_bad = next(r for r in out if r["choice"] == "both_bad")
    assert len(both_bad["ranking"]) == 1 and len(both_bad["ranking"][0]) == 2
    first = out[0]
    assert first["labeler"] == labeler_pseudonym(user_id("alice"))
    assert "alice" not in json.dumps(out)
    assert first["ratings"] == {"helpfulness": 4} and first["time_spent_ms"] == 1234
    assert first["shown_order"] and first["created_at"].startswith("20")
    assert {c["source"] for c in first["candidates"]} == {None}
    assert first["prompt"] == [{"role": "user", "content": "p prompt 0"}]
    no_bb = rows(
        client.get(URL, params={"shape": "raw", "include_both_bad": "false"}, headers=researcher)
    )
    assert len(no_bb) == 5 and all(r["choice"] != "both_bad" for r in no_bb)


def test_filters(client, researcher, labeled) -> None:  # type: ignore[no-untyped-def]
    def raw(**params):  # type: ignore[no-untyped-def]
        return rows(client.get(URL, params={"shape": "raw", **params}, headers=researcher))

    assert len(raw(exclude_flagged="true")) == 5
    assert len(raw(since="2021-01-01T00:00:00Z")) == 5
    assert len(raw(until="2021-01-01T00:00:00Z")) == 1
    assert {r["labeler"] for r in raw(labeler="bob")} == {labeler_pseudonym(user_id("bob"))}
    assert len(raw(labeler=labeler_pseudonym(user_id("carol")))) == 1
    assert raw(tag="nothing-tagged-so") == []
    assert raw(source="no-such-source") == []
    ranked = rows(client.get(URL, params={"shape": "rankings"}, headers=researcher))
    assert [len(r["rankings"]) for r in ranked] == [3, 2, 1]
    assert ranked[0]["agreement"] == pytest.approx(2 / 3)
    high = rows(
        client.get(URL, params={"shape": "rankings", "min_agreement": 0.9}, headers=researcher)
    )
    assert [r["task_id"] for r in high] == [labeled["tasks"][2]]


def test_bad_filters_are_422(client, researcher, labeled) -> None:  # type: ignore[no-untyped-def]
    for params in ({"labeler": "nobody"}, {"model_version": "v-missing"}, {"shape": "pairs"},
                   {"format": "xml"}, {"min_agreement": 2}, {"since": "yesterday"},
                   {"since": "2024-01-02T00:00:00", "until": "2024-01-01T00:00:00"}):  # fmt: skip
        resp = client.get(URL, params=params, headers=researcher)
        assert resp.status_code == 422, (params, resp.text)


def test_snapshot_and_card_recorded(client, researcher, labeled) -> None:  # type: ignore[no-untyped-def]
    resp = client.get(URL, params={"shape": "trl", "exclude_flagged": "true"}, headers=researcher)
    assert resp.status_code == 200
    sid = resp.headers["x-dataset-snapshot"]
    assert resp.headers["link"] == f'</api/v1/exports/{sid}>; rel="describedby"'
    snap = client.get(f"/api/v1/exports/{sid}", headers=researcher).json()
    assert snap["sha256"] == hashlib.sha256(resp.content).hexdigest()
    assert snap["row_count"] == 1 and snap["filters"]["exclude_flagged"] is True
    assert snap["filters"]["_stats"]["judgments"] == 5
    card = client.get(f"/api/v1/exports/{sid}/card", headers=researcher).text
    assert snap["sha256"] in card and "Krippendorff" in card and "rita" in card
    listed = client.get("/api/v1/exports", headers=researcher).json()
    assert [s["id"] for s in listed] == [int(sid)]
    assert client.get("/api/v1/exports/999", headers=researcher).status_code == 404


def test_parquet_and_csv(client, researcher, labeled) -> None:  # type: ignore[no-untyped-def]
    resp = client.get(URL, params={"shape": "raw", "format": "parquet"}, headers=researcher)
    assert resp.status_code == 200
    table = pq.read_table(io.BytesIO(resp.content))
    assert table.num_rows == 6 and "ratings" in table.column_names
    assert table.column("ranking").to_pylist()[5] == [labeled[str(labeled["tasks"][2])]]
    csv_resp = client.get(URL, params={"shape": "trl", "format": "csv"}, headers=researcher)
    assert csv_resp.text.splitlines()[0].startswith("prompt,chosen,rejected")
    assert len(csv_resp.text.splitlines()) == 2


def test_preview_counts(client, researcher, labeled) -> None:  # type: ignore[no-untyped-def]
    p = client.get("/api/v1/exports/preview", headers=researcher).json()
    assert (p["judgments"], p["tasks"], p["labelers"], p["imported"]) == (6, 3, 3, 0)
    assert p["rows"] == {"trl": 1, "raw": 6, "rankings": 3}
    assert p["tied_pairs"] == 2


def test_agreement_endpoint(client, researcher, labeled) -> None:  # type: ignore[no-untyped-def]
    a = client.get("/api/v1/exports/agreement", headers=researcher).json()
    # task 0: votes (a, a, b): 2 of 6 ordered coder pairs agree; task 1: tie vs b: 0 of 2
    assert a["units"] == 2 and a["percent"] == pytest.approx(2 / 8)
    assert a["level"] == "ordinal" and a["alpha"] is not None
    by = {x["labeler"]: x for x in a["labelers"]}
    alice = by[labeler_pseudonym(user_id("alice"))]
    assert (alice["compared"], alice["agreed"]) == (
        1,
        0,
    )  # task 0: bob and carol split; task 1: bob says b
