"""Trust-weighted DPO (ml/policy/dpo_weighting.py) with real TRL on the tiny policy: the loss is
the weighted mean of TRL's own per-pair losses, a weight-0 pair changes nothing, weight 1
everywhere is plain DPO, and a dpo run records its weighting like a reward run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import torch

from ml.params import DPOParams
from ml.tiny import PROMPTS
from tests.training.synth import POLITE, RUDE

WEIGHTS = [0.5, 2.0, 0.0, 1.0, 3.0]


def _rows(n: int = len(WEIGHTS)) -> list[dict]:
    return [
        {
            "prompt": [{"role": "user", "content": PROMPTS[i]}],
            "chosen": [{"role": "assistant", "content": POLITE[i % len(POLITE)]}],
            "rejected": [{"role": "assistant", "content": RUDE[(i * 2) % len(RUDE)]}],
        }
        for i in range(n)
    ]


def _trainer(policy_dir: Path, rows: list[dict], tmp: Path, weighted: bool, **params):  # type: ignore[no-untyped-def]
    """A plain or weighted DPOTrainer whose policy is nudged off its reference (seeded), so
    the pairs' losses differ from log 2 and from each other."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOTrainer

    from ml.policy.dpo import dpo_config
    from ml.policy.dpo_weighting import WeightedDPOTrainer
    from ml.store import load_tokenizer

    tok = load_tokenizer(policy_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    cfg = DPOParams(**{"batch_size": len(rows), **params})
    cls = WeightedDPOTrainer if weighted else DPOTrainer
    return cls(
        model=model,
        args=dpo_config(cfg, str(tmp)),
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
    )


def _loss(trainer, rows: list[int]) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """The trainer's training loss on the train rows at these indices (one batch)."""
    ds = trainer.train_dataset
    batch = trainer.data_collator([ds[i] for i in rows])
    trainer.model.zero_grad()
    return trainer.compute_loss(trainer.model, batch)


def _grads(trainer, rows: list[int]) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    _loss(trainer, rows).backward()
    return [p.grad.clone() for p in trainer.model.parameters() if p.grad is not None]


def _close(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    if len(a) != len(b):
        return False
    return all(torch.allclose(x, y, rtol=1e-4, atol=1e-7) for x, y in zip(a, b, strict=True))


def test_weight_column_survives_into_the_batch(tiny_policy_dir, tmp_path):
    rows = [r | {"weight": w} for r, w in zip(_rows(), WEIGHTS, strict=True)]
    trainer = _trainer(tiny_policy_dir, rows, tmp_path, weighted=True)
    loader = trainer.get_train_dataloader()  # what training sees: columns pruned, collated
    batch = next(iter(loader))
    assert sorted(batch["weight"].tolist()) == sorted(WEIGHTS)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge", "robust"])
def test_loss_is_the_weighted_mean_of_trls_per_pair_losses(tiny_policy_dir, tmp_path, loss_type):
    rows = _rows()
    plain = _trainer(tiny_policy_dir, rows, tmp_path / "p", weighted=False, loss_type=loss_type)
    per_pair = torch.stack([_loss(plain, [i]).detach() for i in range(len(rows))])
    assert per_pair.std() > 1e-3, "the pairs' losses should differ"
    w = torch.tensor(WEIGHTS)
    expected = (w * per_pair).sum() / w.sum()
    weighted_rows = [r | {"weight": x} for r, x in zip(rows, WEIGHTS, strict=True)]
    wt = _trainer(tiny_policy_dir, weighted_rows, tmp_path / "w", True, loss_type=loss_type)
    loss = _loss(wt, list(range(len(rows))))
    assert loss.requires_grad
    assert torch.allclose(loss.detach(), expected, rtol=1e-5), (loss, expected, per_pair)
    assert not torch.allclose(loss.detach(), per_pair.mean(), rtol=1e-3)  # not the plain mean
    assert torch.allclose(_loss(plain, list(range(len(rows)))).detach(), per_pair.mean(), rtol=1e-5)


def test_zero_weight_pair_has_no_effect_and_unit_weights_are_plain_dpo(tiny_policy_dir, tmp_path):
    rows = _rows(4)
    ws = [1.0, 0.0, 2.0, 0.5]
    wt = _trainer(tiny_policy_dir, [r | {"weight": w} for r, w in zip(rows, ws, strict=True)],
                  tmp_path / "a", weighted=True)  # fmt: skip
    with_zero = _grads(wt, [0, 1, 2, 3])
    without = _grads(wt, [0, 2, 3])
    assert _close(with_zero, without)
    ones = _trainer(tiny_policy_dir, [r | {"weight": 1.0} for r in rows], tmp_path / "b", True)
    plain = _trainer(tiny_policy_dir, rows, tmp_path / "c", weighted=False)
    g_ones, g_plain = _grads(ones, [0, 1, 2, 3]), _grads(plain, [0, 1, 2, 3])
    assert _close(g_ones, g_plain)
    assert not _close(with_zero, g_plain)  # the weights do change the gradient
    # an all-zero batch trains nothing (loss 0), as the reward loss
    assert _loss(wt, [1]).item() == 0.0


def _train(policy_dir: Path, rows: list[dict], out: Path) -> dict[str, torch.Tensor]:
    """One optimiser step of ml.policy.dpo.train over all rows (one batch); the saved weights."""
    from safetensors.torch import load_file

    from ml.policy import Callbacks, PolicyData, train

    cfg = DPOParams(batch_size=len(rows), learning_rate=1e-3, seed=0)
    result = train(cfg, PolicyData(policy_path=policy_dir, out_dir=out, train_pairs=rows),
                   Callbacks())  # fmt: skip
    assert result.metrics["steps"] == 1
    return load_file(str(out / "model.safetensors"))


def test_trained_weights_ignore_a_weight_zero_pair(tiny_policy_dir, tmp_path):
    """Through dpo.train (the trainer choice, the weight column, TRL's dataloader): weight 0 on
    a pair trains exactly as leaving it out; weight 1 on it trains differently."""
    rows = _rows(4)
    zero = _train(tiny_policy_dir, [r | {"weight": 0.0 if i == 1 else 1.0}
                                    for i, r in enumerate(rows)], tmp_path / "z")  # fmt: skip
    left_out = _train(tiny_policy_dir, [rows[0], rows[2], rows[3]], tmp_path / "l")
    kept = _train(tiny_policy_dir, [r | {"weight": 1.0} for r in rows], tmp_path / "k")
    # Adam's first step moves each weight by about lr * sign(grad) (lr = 1e-3), which blows up
    # float noise where the exact gradient is 0 (attention key biases) to ~1e-5: compare at lr/10
    gap = {n: (zero[n] - left_out[n]).abs().max().item() for n in zero}
    assert max(gap.values()) < 1e-4, gap
    moved = sum(int(((kept[n] - left_out[n]).abs() > 1e-4).sum()) for n in kept)
    assert moved > 1000  # the pair with weight 1 does move the weights


# --- through the job and the API ---


def _outvoted_crowd(n_tasks: int) -> None:
    """'good' is right on every task; 'bad1' and 'bad2' are wrong and outvote it. The first 4
    tasks are gold (candidate 0, the polite reply, is the answer)."""
    from app.db import session_scope
    from app.models import Judgment, utcnow
    from app.quality import service
    from app.quality.gold import GoldIn
    from tests.exports.helpers import candidates, user_id
    from tests.factories import make_user
    from tests.training.synth import make_task_rows

    for name in ("good", "bad1", "bad2"):
        make_user(name)
    tasks = make_task_rows([(f"{PROMPTS[i % len(PROMPTS)]} ({i})",
                             [POLITE[i % len(POLITE)], RUDE[i % len(RUDE)]])
                            for i in range(n_tasks)])  # fmt: skip
    at = utcnow() - timedelta(minutes=5)
    with session_scope() as s:
        for t in tasks:
            a, b = candidates(t)
            for name in ("good", "bad1", "bad2"):
                ranking = [[a], [b]] if name == "good" else [[b], [a]]
                s.add(Judgment(task_id=t, user_id=user_id(name), ranking=ranking,
                               shown_order=[a, b], created_at=at))  # fmt: skip
    with session_scope() as s:
        for t in tasks[:4]:
            service.set_gold(s, t, GoldIn(choice="a"))


@pytest.mark.slow
def test_dpo_run_records_gold_weighting(active_tiny_policy, client):
    from app.db import session_scope
    from app.models import ModelVersion, RunKind, RunStatus
    from tests.factories import auth, make_user
    from tests.training.conftest import run_job

    _outvoted_crowd(16)
    params = {"algorithm": "dpo", "weighting": "gold", "learning_rate": 1e-3, "batch_size": 4,
              "eval_fraction": 0.25, "max_heldout": 4, "eval_samples_per_prompt": 1,
              "kl_max": 1000, "auto_promote": False}  # fmt: skip
    run = run_job(RunKind.policy, params)
    assert run.status == RunStatus.succeeded, (run.error, run.log_tail)
    m = run.metrics
    assert m["weighting"] == "gold" and m["config"]["weighting"] == "gold"
    w = m["labeler_weights"]
    assert set(w) == {"good", "bad1", "bad2"} and w["bad1"] == w["bad2"] == 0.0 and w["good"] > 1
    assert m["pairs_train"] > 0 and m["steps"] > 0
    with session_scope() as s:
        version = s.get(ModelVersion, m["policy_version_new_id"])
        assert version.metrics["weighting"] == "gold"
        assert version.metrics["labeler_weights"] == w
    h = auth(make_user("boss", "admin"))
    html = client.get(f"/admin/runs/{run.id}", headers=h).text
    assert "<th>weighting</th><td>gold</td>" in html.replace("\n", "").replace("  ", "")


def test_api_and_form_validate_dpo_weighting(client):  # type: ignore[no-untyped-def]
    from app.admin import forms
    from tests.factories import auth, make_user

    h = auth(make_user("boss", "admin"))
    bad = {"kind": "policy", "params": {"algorithm": "dpo", "weighting": "bogus"}}
    r = client.post("/api/v1/runs", json=bad, headers=h)
    assert r.status_code == 422 and "weighting" in r.text, r.text
    # online algorithms have no pairs to weight: refused, not ignored
    rloo = {"kind": "policy", "params": {"algorithm": "rloo", "weighting": "gold"}}
    assert client.post("/api/v1/runs", json=rloo, headers=h).status_code == 422
    good = {"kind": "policy", "params": {"algorithm": "dpo", "weighting": "agreement"}}
    r = client.post("/api/v1/runs", json=good, headers=h)
    assert r.status_code == 201 and r.json()["params"]["weighting"] == "agreement", r.text
    parsed = forms.parse("policy", {"algorithm": "dpo", "dpo.weighting": "gold"})
    assert parsed["weighting"] == "gold"
    with pytest.raises(forms.FormError, match="Trust weighting"):
        forms.parse("policy", {"algorithm": "dpo", "dpo.weighting": "x"})
