"""Round trip: export trl -> datasets.load_dataset("json") -> TRL RewardTrainer, untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.exports.helpers import candidates, judge
from tests.factories import auth, make_tasks, make_user

pytestmark = pytest.mark.slow


def _train_one_step(data_file: Path, policy_dir: Path, out: Path) -> float:
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    ds = load_dataset("json", data_files=str(data_file), split="train")
    tok = AutoTokenizer.from_pretrained(policy_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        policy_dir, num_labels=1, dtype=torch.float32
    )
    model.config.pad_token_id = tok.pad_token_id
    args = RewardConfig(
        output_dir=str(out),
        max_steps=1,
        per_device_train_batch_size=2,
        bf16=False,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        dataset_num_proc=None,
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    result = trainer.train()
    return float(result.training_loss)


def test_trl_export_trains_reward_model(client, tiny_policy_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    researcher = auth(make_user("rita", "researcher"))
    make_user("alice")
    for tid in make_tasks(4, k=3):
        a, b, c = candidates(tid)
        judge(tid, "alice", [[a], [b, c]])
    admin = auth(make_user("root", "admin"))
    chat = "\n".join(
        json.dumps(
            {
                "prompt": [{"role": "user", "content": f"chat question {i}"}],
                "chosen": [{"role": "assistant", "content": f"good answer {i}"}],
                "rejected": [{"role": "assistant", "content": f"bad {i}"}],
            }
        )
        for i in range(3)
    )
    assert (
        client.post(
            "/api/v1/import/preferences?source=chat", content=chat, headers=admin
        ).status_code
        == 201
    )

    for name, params, conversational in [
        ("text", {"labeler": "alice"}, False),
        ("chat", {"source": "chat", "margin": "true"}, True),
    ]:
        resp = client.get("/api/v1/exports/preferences", params=params, headers=researcher)
        assert resp.status_code == 200
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(resp.content)
        first = json.loads(resp.text.splitlines()[0])
        assert isinstance(first["prompt"], list) is conversational
        assert len(resp.text.splitlines()) == (8 if name == "text" else 3)
        loss = _train_one_step(path, tiny_policy_dir, tmp_path / f"out-{name}")
        assert loss == loss and loss > 0  # finite and positive
