"""Long preference pairs fit max_length by losing their oldest turns, then oldest tokens."""

from __future__ import annotations

from pathlib import Path

from ml.pairs import fit_pair, tokenize_pairs
from ml.store import load_tokenizer


def _conversation(turns: int) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": "be kind"}]
    for i in range(turns):
        msgs.append({"role": "user", "content": f"question {i} " + "words " * 20})
        msgs.append({"role": "assistant", "content": f"answer {i} " + "words " * 20})
    msgs.append({"role": "user", "content": "the latest question"})
    return msgs


def _ids(tok, messages):  # type: ignore[no-untyped-def]
    return list(tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


def test_oldest_turns_go_first_and_the_end_survives(tiny_policy_dir: Path) -> None:
    tok = load_tokenizer(tiny_policy_dir)
    prompt = _conversation(6)
    chosen = [{"role": "assistant", "content": "a helpful final reply"}]
    rejected = [{"role": "assistant", "content": "no"}]
    full = _ids(tok, prompt + chosen)
    latest = [prompt[0], *prompt[-3:]]  # system, last user/assistant exchange, latest question
    budget = max(len(_ids(tok, latest + chosen)), len(_ids(tok, latest + rejected)))
    assert budget < len(full)
    c, r, turns, cut, longest = fit_pair(tok, prompt, chosen, rejected, budget)
    assert longest == len(full) and not cut and turns == 10  # 5 oldest exchanges dropped
    assert c == _ids(tok, latest + chosen) and r == _ids(tok, latest + rejected)
    # tighter than the latest question + reply: the oldest tokens are cut, the end stays
    c, r, turns, cut, _ = fit_pair(tok, prompt, chosen, rejected, 12)
    assert cut and len(c) == 12 and c == _ids(tok, [prompt[0], prompt[-1]] + chosen)[-12:]


def test_tokenize_pairs_counts_and_matches_trl(tiny_policy_dir: Path) -> None:
    tok = load_tokenizer(tiny_policy_dir)
    short = {"prompt": [{"role": "user", "content": "hi"}], "chosen": "hello", "rejected": "go"}
    long = {"prompt": _conversation(8), "chosen": "yes", "rejected": "no", "margin": 1}
    items, stats = tokenize_pairs(tok, [short, long], 48)
    assert len(items) == 2 and stats.truncated == 1 and stats.dropped == 0
    assert stats.turns_dropped > 0 and stats.longest > 48
    assert all(len(i["chosen_ids"]) <= 48 and len(i["rejected_ids"]) <= 48 for i in items)
    # the short pair is exactly what TRL's RewardTrainer would tokenize
    assert items[0]["chosen_ids"] == _ids(tok, short["prompt"] + [
        {"role": "assistant", "content": "hello"}])  # fmt: skip
    assert items[1]["margin"] == 1.0
    kept, stats = tokenize_pairs(tok, [short, long], 48, "drop")
    assert len(kept) == 1 and stats.dropped == 1 and stats.truncated == 0
