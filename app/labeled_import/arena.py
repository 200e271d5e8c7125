"""FastChat / Chatbot Arena battle logs: one battle per JSONL line.

    {"model_a": "...", "model_b": "...", "winner": "model_a" | "model_b" | "tie" | "tie (bothbad)",
     "conversation_a": [{"role": "user", ...}, {"role": "assistant", ...}, ...],
     "conversation_b": [...], "question_id": "...", "tstamp": ...}

The prompt is the conversation before the last assistant turn (both sides must share it); the
two last replies are the candidates. A tie is ranking [[a, b]] with choice "tie", both-bad the
same with choice "both_bad" (half a win each in the arena ratings).
"""

from __future__ import annotations

from typing import Any

from app.labeled_import.hf import _messages
from app.labeled_import.records import LabeledRecord, RecordError, content_id

WINNERS = {
    "model_a": ([[0], [1]], "a"),
    "model_b": ([[1], [0]], "b"),
    "tie": ([[0, 1]], "tie"),
    "tie (bothbad)": ([[0, 1]], "both_bad"),
}


def _model(obj: dict[str, Any], key: str) -> str:
    name = obj.get(key)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise RecordError(f"'{key}' must be a model name of 1-200 characters")
    return name.strip()


def parse_battle(line: int, obj: Any) -> list[LabeledRecord]:
    """One battle -> one record (ranking over [reply of a, reply of b]) naming both models."""
    if not isinstance(obj, dict):
        raise RecordError("a battle must be a JSON object")
    a, b = _model(obj, "model_a"), _model(obj, "model_b")
    if a == b:
        raise RecordError("'model_a' and 'model_b' must differ")
    winner = obj.get("winner")
    if winner not in WINNERS:
        raise RecordError("'winner' must be model_a, model_b, tie or 'tie (bothbad)'")
    conv_a = _messages(obj.get("conversation_a"), "conversation_a")
    conv_b = _messages(obj.get("conversation_b"), "conversation_b")
    for name, conv in (("conversation_a", conv_a), ("conversation_b", conv_b)):
        if len(conv) < 2 or conv[-1]["role"] != "assistant" or conv[-2]["role"] != "user":
            raise RecordError(f"'{name}' must end with a user turn and the assistant's reply")
    if conv_a[:-1] != conv_b[:-1]:
        raise RecordError(
            "conversation_a and conversation_b differ before the last reply (multi-turn battles "
            "with different earlier replies cannot be one comparison)"
        )
    reply_a, reply_b = conv_a[-1]["content"].strip(), conv_b[-1]["content"].strip()
    if not reply_a or not reply_b:
        raise RecordError("a reply is empty")
    if reply_a == reply_b:
        raise RecordError("both models gave the same reply: nothing to compare")
    ranking, choice = WINNERS[winner]
    ext = obj.get("question_id")
    key = content_id([ext, obj.get("tstamp"), a, b, winner, conv_a, conv_b])
    return [
        LabeledRecord(
            line=line,
            messages=conv_a[:-1],
            is_chat=True,
            completions=[reply_a, reply_b],
            ranking=[list(g) for g in ranking],
            external_id=key,
            choice=choice,
            tags=["arena"],
            models=(a, b),
        )
    ]
