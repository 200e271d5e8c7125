"""Flagging on a simulated crowd (seeded): 14 good labelers (85% right), 3 random, 2 always-A,
1 fast-random; 3 labelers per pair, 1 in 20 tasks gold."""

from __future__ import annotations

from app.quality.crowd import evaluate, flagged, simulate, synthetic_pairs

PAIRS = synthetic_pairs(1000)


def test_flagging_finds_every_bad_labeler_and_no_good_one():
    for seed in (0, 1, 2):
        r = evaluate(PAIRS, seed)
        assert r["bad_flagged"] == r["bad"] == 6, (seed, r)
        assert r["false_flags"] == 0, (seed, r)
        assert 0.04 < r["gold_answers"] / r["judgments"] < 0.06
        lost = r["acc_all_good"] - r["acc_none"]
        assert lost > 0.05
        # excluding the flagged labelers (their tasks reopen) recovers what they cost
        assert r["acc_exclusion_relabeled"] - r["acc_none"] >= 0.5 * lost, (seed, r)
        assert r["acc_agreement"] > r["acc_none"], (seed, r)


def test_flags_name_the_reason():
    c = simulate(PAIRS, 0)
    stats = flagged(c)
    reasons = {c.kinds[u]: set() for u in c.kinds}
    for u, s in stats.items():
        reasons[c.kinds[u]] |= set(s.flags)
    assert "position" in reasons["always_a"] and "fast" in reasons["fast_random"]
    assert "agreement" in reasons["random"]
    assert not reasons["good"]
    # gold never counts as work: each labeler answers a gold pair at most once
    seen = [(f.user_id, f.task_id) for f in c.facts if f.gold]
    assert len(seen) == len(set(seen))
