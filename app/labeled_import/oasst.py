"""OpenAssistant message trees: every parent with >= 2 ranked assistant replies is a task.

The prompt is the conversation down to that parent (prompter -> user, assistant -> assistant);
the ranked replies are the candidates and their sibling `rank` (0 = best) the K-wise ranking.
Deleted replies are left out (an empty but ranked reply is kept: saying nothing was ranked too);
a reply repeating a better-ranked sibling's text is dropped (a task's candidates must differ).
"""

from __future__ import annotations

from typing import Any

from app.labeled_import.records import LabeledRecord, RecordError

ROLES = {"prompter": "user", "assistant": "assistant"}


def _check(node: Any, where: str) -> None:
    if not isinstance(node, dict):
        raise RecordError(f"{where}: a message must be an object")
    if node.get("role") not in ROLES:
        raise RecordError(f"{where}: role must be 'prompter' or 'assistant'")
    if not isinstance(node.get("text"), str):
        raise RecordError(f"{where}: 'text' must be a string")
    if not isinstance(node.get("replies", []), list):
        raise RecordError(f"{where}: 'replies' must be a list")
    rank = node.get("rank")
    if rank is not None and (not isinstance(rank, int) or isinstance(rank, bool) or rank < 0):
        raise RecordError(f"{where}: 'rank' must be a non-negative integer or null")


def _task(node: dict[str, Any], path: list[dict[str, str]], tree_id: str) -> LabeledRecord | None:
    ranked = sorted(
        (
            r
            for r in node.get("replies", [])
            if r["role"] == "assistant" and r.get("rank") is not None and not r.get("deleted")
        ),
        key=lambda r: r["rank"],
    )
    texts: list[str] = []
    ranks: list[int] = []
    for r in ranked:
        text = r["text"].strip()
        if text not in texts:
            texts.append(text)
            ranks.append(r["rank"])
    if len(texts) < 2:
        return None
    groups: dict[int, list[int]] = {}
    for i, rank in enumerate(ranks):
        groups.setdefault(rank, []).append(i)
    return LabeledRecord(
        line=0,
        messages=path,
        is_chat=True,
        completions=texts,
        ranking=[groups[k] for k in sorted(groups)],
        external_id=str(node.get("message_id") or f"{tree_id}:{len(path)}:{texts[0][:20]}"),
        tags=[f"lang:{node['lang']}"] if isinstance(node.get("lang"), str) else [],
    )


def parse_tree(line: int, obj: Any) -> list[LabeledRecord]:
    """All tasks of one tree (one JSONL line)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), dict):
        raise RecordError("an OpenAssistant tree needs a 'prompt' message object")
    tree_id = str(obj.get("message_tree_id", line))
    out: list[LabeledRecord] = []
    stack: list[tuple[dict[str, Any], list[dict[str, str]], str]] = [(obj["prompt"], [], "prompt")]
    while stack:
        node, path, where = stack.pop()
        _check(node, where)
        if node.get("deleted") or not node["text"].strip():
            continue
        here = [*path, {"role": ROLES[node["role"]], "content": node["text"].strip()}]
        replies = node.get("replies", [])
        for i, reply in enumerate(replies):
            _check(reply, f"{where}.replies[{i}]")
        if node["role"] == "prompter":
            record = _task(node, here, tree_id)
            if record is not None:
                record.line = line
                out.append(record)
        stack.extend(
            (r, here, f"{where}.replies[{i}]") for i, r in reversed(list(enumerate(replies)))
        )
    return out
