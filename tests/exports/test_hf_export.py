"""`prefloop export preferences --format hf`: a `save_to_disk` directory for every shape with the
dataset card as README.md (Hub YAML metadata), `--push-to-hub` up to the upload call, and
load_from_disk -> RewardTrainer unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import _discover, root
from app.db import session_scope
from app.exports import hf
from app.models import DatasetSnapshot
from tests.exports.helpers import candidates, judge
from tests.factories import make_tasks, make_user

_discover()
runner = CliRunner()
HF = ["export", "preferences", "--format", "hf"]


@pytest.fixture
def judged() -> list[int]:
    make_user("alice")
    make_user("bob")
    tasks = make_tasks(6, k=3)
    for i, tid in enumerate(tasks):
        a, b, c = candidates(tid)
        judge(tid, "alice", [[a], [b], [c]])
        if i % 2:
            judge(tid, "bob", [[b], [a, c]])
    return tasks


@pytest.mark.parametrize("shape", ["trl", "raw", "rankings"])
def test_every_shape_as_a_datasets_directory(tmp_path: Path, judged: list[int], shape: str) -> None:
    from datasets import load_from_disk
    from huggingface_hub import DatasetCard

    parquet, out = tmp_path / "same.parquet", tmp_path / "hf"
    base = ["export", "preferences", "--shape", shape]
    assert runner.invoke(root, [*base, "-o", str(parquet), "--format", "parquet"]).exit_code == 0
    r = runner.invoke(root, [*base, "-o", str(out), "--format", "hf", "--license", "cc-by-4.0"])
    assert r.exit_code == 0, r.output
    ds = load_from_disk(str(out))
    table = pq.read_table(parquet)
    assert ds.num_rows == table.num_rows > 0
    assert ds.column_names == table.schema.names
    rows = table.to_pylist()
    if shape == "raw":  # datasets has no map type: {key: value} becomes [{key, value}]
        for row in rows:
            row["ratings"] = [{"key": k, "value": v} for k, v in row["ratings"] or []]
    assert ds.to_list() == rows
    card = DatasetCard.load(out / "README.md")
    meta = card.data.to_dict()
    assert meta["license"] == "cc-by-4.0" and meta["size_categories"] == ["n<1K"]
    assert "prefloop" in meta["tags"] and meta["pretty_name"].startswith("prefloop")
    assert "# prefloop dataset snapshot" in card.text and "load_from_disk" in card.text
    with session_scope() as s:
        snap = s.scalars(select(DatasetSnapshot).where(DatasetSnapshot.format == "hf")).one()
        assert snap.shape == shape and snap.row_count == ds.num_rows and snap.card in card.text
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_bad_targets_and_options(tmp_path: Path, judged: list[int]) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    r = runner.invoke(root, [*HF, "-o", str(busy)])
    assert r.exit_code == 1 and "not an empty directory" in r.output
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    r = runner.invoke(
        root, ["export", "preferences", "-o", str(tmp_path / "x.jsonl"), "--push-to-hub", "a/b"]
    )
    assert r.exit_code == 1 and "--format hf" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()  # an existing empty directory is fine
    assert runner.invoke(root, [*HF, "-o", str(empty)]).exit_code == 0
    assert (empty / "README.md").exists()
    nothing = tmp_path / "nothing"  # no rows: datasets could not load such a directory
    r = runner.invoke(root, [*HF, "--shape", "raw", "--since", "2999-01-01", "-o", str(nothing)])
    assert r.exit_code == 1 and "no rows" in r.output and not nothing.exists()
    with session_scope() as s:  # the refused runs recorded no snapshot
        assert len(s.scalars(select(DatasetSnapshot)).all()) == 1


class Recorder:
    """Stands where huggingface_hub's HfApi and Dataset.push_to_hub would be called."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def create_repo(self, repo_id: str, **kw: Any) -> None:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))

    def upload_file(self, **kw: Any) -> None:
        self.calls.append(("upload_file", {**kw, "text": Path(kw["path_or_fileobj"]).read_text()}))

    def push(self, repo_id: str, **kw: Any) -> None:
        self.calls.append(("push_to_hub", {"repo_id": repo_id, **kw}))


def test_push_to_hub_up_to_the_upload(tmp_path: Path, judged: list[int]) -> None:
    out = tmp_path / "hf"
    assert runner.invoke(root, [*HF, "-o", str(out)]).exit_code == 0
    rec = Recorder()
    hf.push_to_hub(out, "team/prefs", token="hf_x", private=True, api=rec, push=rec.push)
    names = [name for name, _ in rec.calls]
    assert names == ["create_repo", "upload_file", "push_to_hub"]  # card first
    assert rec.calls[0][1] == {
        "repo_id": "team/prefs", "repo_type": "dataset", "private": True, "exist_ok": True
    }  # fmt: skip
    upload = rec.calls[1][1]
    assert upload["path_in_repo"] == "README.md" and upload["repo_type"] == "dataset"
    assert upload["text"] == (out / "README.md").read_text()
    pushed = {"repo_id": "team/prefs", "token": "hf_x", "private": True, "split": "train"}
    assert rec.calls[2][1] == pushed

    # the CLI reaches the real client; offline (as in tests) it fails cleanly, keeping the files
    again = tmp_path / "hf2"
    r = runner.invoke(
        root,
        [
            "export",
            "preferences",
            "--format",
            "hf",
            "-o",
            str(again),
            "--push-to-hub",
            "team/prefs",
        ],  # fmt: skip
    )
    assert r.exit_code == 1 and "upload to team/prefs failed" in r.output
    assert (again / "README.md").exists()


@pytest.mark.slow
def test_load_from_disk_trains_a_reward_model(
    tmp_path: Path, judged: list[int], tiny_policy_dir: Path
) -> None:
    import torch
    from datasets import load_from_disk
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    out = tmp_path / "hf"
    assert runner.invoke(root, [*HF, "-o", str(out)]).exit_code == 0
    ds = load_from_disk(str(out))
    tok = AutoTokenizer.from_pretrained(tiny_policy_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_policy_dir, num_labels=1, dtype=torch.float32
    )
    model.config.pad_token_id = tok.pad_token_id
    args = RewardConfig(
        output_dir=str(tmp_path / "rm"),
        max_steps=2,
        per_device_train_batch_size=2,
        bf16=False,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        dataset_num_proc=None,
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    loss = float(trainer.train().training_loss)
    assert loss == loss and loss > 0
