"""Hugging Face preference rows: explicit prompt, implicit prompt, conversational.

- explicit: {"prompt", "chosen", "rejected"}, strings or message lists;
- implicit: {"chosen", "rejected"} holding whole texts or conversations; the prompt is their
  longest common prefix, cut at a word boundary, or, for "\\n\\nHuman: ... \\n\\nAssistant: ..."
  transcripts, at the last "Assistant:" turn both share (the turns become chat messages).
"""

from __future__ import annotations

import re
from typing import Any

from app.labeled_import.records import LabeledRecord, RecordError, content_id

TURN = re.compile(r"\n\n(Human|Assistant):[ \t]?")
ASSISTANT = "\n\nAssistant:"
ROLES = {"Human": "user", "Assistant": "assistant"}


def _is_transcript(text: str) -> bool:
    return text.lstrip(" ").startswith(("\n\nHuman:", "Human:")) and ASSISTANT in text


def parse_transcript(text: str) -> list[dict[str, str]]:
    """'\\n\\nHuman: a\\n\\nAssistant: b' -> [{user: a}, {assistant: b}] (empty turns dropped)."""
    text = text.lstrip(" ")
    if text.startswith("Human:"):
        text = "\n\n" + text
    parts = TURN.split(text)
    if parts[0].strip():
        raise RecordError("transcript must start with 'Human:'")
    messages = []
    for role, content in zip(parts[1::2], parts[2::2], strict=True):
        if content.strip():
            messages.append({"role": ROLES[role], "content": content.strip()})
    return messages


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _messages(value: Any, field: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise RecordError(f"'{field}' must be a non-empty string or list of messages")
    out = []
    for i, m in enumerate(value):
        if (
            not isinstance(m, dict)
            or m.get("role") not in ("system", "user", "assistant")
            or not isinstance(m.get("content"), str)
        ):
            raise RecordError(f"'{field}[{i}]' must be {{role: system|user|assistant, content}}")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _reply(messages: list[dict[str, str]], field: str) -> str:
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        raise RecordError(f"'{field}' must be exactly one assistant message after the prompt")
    return messages[0]["content"]


def _implicit_text(chosen: str, rejected: str) -> tuple[list[dict[str, str]], bool, str, str]:
    n = _common_prefix(chosen, rejected)
    if _is_transcript(chosen) and _is_transcript(rejected):
        cut = chosen.rfind(ASSISTANT, 0, n)
        if cut < 0:
            raise RecordError("chosen and rejected transcripts share no 'Assistant:' turn")
        end = cut + len(ASSISTANT)
        messages = parse_transcript(chosen[:end])
        if not messages or messages[-1]["role"] != "user":
            raise RecordError("the shared transcript must end with a Human turn")
        return messages, True, chosen[end:], rejected[end:]
    while n > 0 and not chosen[n - 1].isspace() and n < min(len(chosen), len(rejected)):
        n -= 1  # back off to a word boundary so no word is split between prompt and reply
    prompt = chosen[:n].strip()
    if not prompt:
        raise RecordError("cannot recover a prompt: 'chosen' and 'rejected' share no prefix")
    return [{"role": "user", "content": prompt}], False, chosen[n:], rejected[n:]


def parse_row(line: int, obj: Any, occurrence: dict[str, int]) -> LabeledRecord:
    """One row -> a record with ranking [[chosen], [rejected]]."""
    if not isinstance(obj, dict) or "chosen" not in obj or "rejected" not in obj:
        raise RecordError("a preference row needs 'chosen' and 'rejected'")
    chosen, rejected, prompt = obj["chosen"], obj["rejected"], obj.get("prompt")
    if isinstance(chosen, str) != isinstance(rejected, str):
        raise RecordError("'chosen' and 'rejected' must both be strings or both message lists")
    if prompt is not None:
        if isinstance(prompt, str):
            if not prompt.strip():
                raise RecordError("'prompt' is empty")
            if _is_transcript(prompt + " x"):
                messages, is_chat = parse_transcript(prompt), True
            else:
                messages, is_chat = [{"role": "user", "content": prompt.strip()}], False
        else:
            messages, is_chat = _messages(prompt, "prompt"), True
        if isinstance(chosen, str):
            c_text, r_text = chosen, rejected
        else:
            c_msgs, r_msgs = _messages(chosen, "chosen"), _messages(rejected, "rejected")
            if c_msgs[: len(messages)] == messages and len(c_msgs) > len(messages):
                c_msgs, r_msgs = c_msgs[len(messages) :], r_msgs[len(messages) :]
            c_text, r_text = _reply(c_msgs, "chosen"), _reply(r_msgs, "rejected")
            is_chat = True
    elif isinstance(chosen, str):
        messages, is_chat, c_text, r_text = _implicit_text(chosen, rejected)
    else:
        c_msgs, r_msgs = _messages(chosen, "chosen"), _messages(rejected, "rejected")
        n = 0
        while n < min(len(c_msgs), len(r_msgs)) and c_msgs[n] == r_msgs[n]:
            n += 1
        messages, is_chat = c_msgs[:n], True
        if not messages:
            raise RecordError("cannot recover a prompt: the conversations share no message")
        c_text, r_text = _reply(c_msgs[n:], "chosen"), _reply(r_msgs[n:], "rejected")
    if messages and messages[-1]["role"] == "assistant":
        raise RecordError("the prompt must not end with an assistant message")
    # an empty reply is data (the model said nothing, and that was preferred or rejected)
    c_text, r_text = c_text.strip(), r_text.strip()
    if c_text == r_text:
        raise RecordError("'chosen' and 'rejected' are the same reply")
    key = content_id(["hf", messages, c_text, r_text])
    occurrence[key] = occurrence.get(key, 0) + 1
    return LabeledRecord(
        line=line,
        messages=messages,
        is_chat=is_chat,
        completions=[c_text, r_text],
        ranking=[[0], [1]],
        external_id=f"{key}.{occurrence[key]}",
    )
