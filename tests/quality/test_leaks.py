"""Gold tasks and excluded judgments never reach trl/rankings exports or reward rows; raw
exports keep them, marked; new snapshots record the judgment ids they held."""

from __future__ import annotations

import orjson
from sqlalchemy import select

from app.db import session_scope
from app.exports.schemas import ExportFilters
from app.exports.service import export_to_file
from app.models import DatasetSnapshot
from app.quality import service
from app.quality.gold import GoldIn
from app.quality.lineage import in_ranges
from tests.exports.helpers import candidates, judge, user_id
from tests.factories import make_tasks, make_user
from workers.datasets import reward_rows


def _setup() -> dict[str, list[int]]:
    for n in ("alice", "bob", "mallory"):
        make_user(n)
    tasks = make_tasks(4, required=3)
    ids: dict[str, list[int]] = {"alice": [], "bob": [], "mallory": []}
    for t in tasks:
        a, b = candidates(t)
        for name in ids:
            ranking = [[b], [a]] if name == "mallory" else [[a], [b]]
            ids[name].append(judge(t, name, ranking))
    mallory = user_id("mallory")
    with session_scope() as s:
        service.set_gold(s, tasks[0], GoldIn(choice="a"))
        service.exclude(s, mallory, None, retrain=False)
    ids["gold_task"] = [tasks[0]]
    ids["gold_judgments"] = [ids[n][0] for n in ("alice", "bob", "mallory")]
    return ids


def _lines(path) -> list[dict]:  # type: ignore[no-untyped-def]
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def test_gold_and_excluded_never_in_training_shapes(tmp_path):
    ids = _setup()
    gold_task = ids["gold_task"][0]
    snap_trl, _ = export_to_file(ExportFilters(), "trl", "jsonl", tmp_path / "t.jsonl")
    trl = _lines(tmp_path / "t.jsonl")
    assert len(trl) == 3 and all(r["task_id"] != gold_task for r in trl)
    assert all(r["votes"] == 2 for r in trl)  # mallory's votes are out
    export_to_file(ExportFilters(), "rankings", "jsonl", tmp_path / "k.jsonl")
    rankings = _lines(tmp_path / "k.jsonl")
    assert sorted(r["task_id"] for r in rankings) == sorted({r["task_id"] for r in trl})
    assert all(len(r["rankings"]) == 2 for r in rankings)
    snap_raw, _ = export_to_file(ExportFilters(), "raw", "jsonl", tmp_path / "r.jsonl")
    raw = _lines(tmp_path / "r.jsonl")
    assert len(raw) == 12
    assert {r["judgment_id"] for r in raw if r["gold"]} == set(ids["gold_judgments"])
    assert {r["judgment_id"] for r in raw if r["excluded"]} == set(ids["mallory"])
    with session_scope() as s:
        data = reward_rows(s, 0.0, 0.0)
        trl_snap = s.get_one(DatasetSnapshot, snap_trl)
        raw_snap = s.get_one(DatasetSnapshot, snap_raw)
        # lineage: the snapshots record exactly what they held
        assert in_ranges(sorted(ids["mallory"]), trl_snap.judgment_id_ranges) == 0
        assert in_ranges(sorted(ids["mallory"]), raw_snap.judgment_id_ranges) == 4
    assert not set(data.judgment_ids) & (set(ids["mallory"]) | set(ids["gold_judgments"]))
    assert len(data.judgment_ids) == 6 and len(data.train) + len(data.eval) == 3


def test_undo_brings_judgments_back_and_is_recorded(tmp_path):
    ids = _setup()
    mallory = user_id("mallory")
    with session_scope() as s:
        ex = service.undo_exclusion(s, mallory, None)
        assert ex.undone_at is not None and ex.judgment_count == 4
        data = reward_rows(s, 0.0, 0.0)
    assert set(ids["mallory"][1:]) <= set(data.judgment_ids)
    with session_scope() as s:
        assert s.scalar(select(DatasetSnapshot.id)) is None
        assert not service.state(s, mallory).paused


def test_exclusion_reopens_tasks_for_other_labelers_and_undo_counts_again():
    _setup()  # 4 tasks, 3 required, 3 judgments each; task 1 gold; mallory excluded
    with session_scope() as s:
        from app.models import ComparisonTask

        tasks = {t.id: (t.judgment_count, str(t.status)) for t in s.scalars(select(ComparisonTask))}
    gold = min(tasks)
    assert tasks.pop(gold) == (3, "gold")  # gold tasks are left as they are
    assert set(tasks.values()) == {(2, "open")}
    with session_scope() as s:
        service.undo_exclusion(s, user_id("mallory"), None)
    with session_scope() as s:
        tasks = {t.id: (t.judgment_count, str(t.status)) for t in s.scalars(select(ComparisonTask))}
    assert tasks.pop(gold) == (3, "gold") and set(tasks.values()) == {(3, "complete")}
