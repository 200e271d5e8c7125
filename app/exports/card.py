"""A short Markdown dataset card for each export, so a paper or training run can cite it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.exports.schemas import ExportFilters

SHAPE_NOTES = {
    "trl": (
        "One row per ordered pair `{prompt, chosen, rejected}` (explicit prompt), from a "
        "majority vote over every kept judgment of a task; `votes` and `agreement` give the vote "
        "count and the share agreeing with the majority. Ties and both-bad answers count as "
        "'tied' votes and never become chosen/rejected rows. Conversational rows (message lists) "
        "when any selected prompt is chat-shaped; otherwise plain text, with a single space put "
        "before completions that would otherwise be glued to the prompt (TRL's RewardTrainer "
        "concatenates prompt + completion with no separator). `margin`, when present, is "
        "(wins - losses) / votes and enters the reward-model loss."
    ),
    "raw": (
        "One row per judgment: pseudonymous labeler id (HMAC of the account id; stable, not "
        "reversible) or the import source, the ranking best group first with ties sharing a "
        "group, choice, ratings, flags, rationale, the order shown, time spent, each "
        "candidate's source and model version, and timestamps (UTC)."
    ),
    "rankings": (
        "One row per task with every kept K-wise ranking; the i-th entries of rankings, "
        "choices, labelers, sources and judgment_ids belong to one judgment."
    ),
}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return (
        "n/a (too few overlapping judgments or no variation)" if value is None else f"{value:.3f}"
    )


def render_card(
    *,
    snapshot_id: int,
    shape: str,
    fmt: str,
    filename: str,
    filters: dict[str, Any],
    stats: dict[str, Any],
    sha256: str,
    size: int,
    created_by: str | None,
    created_at: datetime,
) -> str:
    """The dataset card (Markdown)."""
    agreement = stats.get("agreement", {})
    defaults = ExportFilters().recorded()
    active = {k: v for k, v in filters.items() if k in defaults and v != defaults[k]}
    lines = [
        f"# prefloop dataset snapshot {snapshot_id}",
        "",
        f"- file: `{filename}` ({fmt}, {size} bytes)",
        f"- sha256: `{sha256}`",
        f"- shape: `{shape}`; rows: {stats.get('rows', 0)}",
        f"- exported: {created_at.isoformat()} by {created_by or 'unknown'}",
        f"- judgments: {stats.get('judgments', 0)} "
        f"({stats.get('imported', 0)} imported) on {stats.get('tasks', 0)} tasks "
        f"from {stats.get('labelers', 0)} labelers/sources",
        f"- cite as: prefloop snapshot {snapshot_id}, sha256 {sha256[:16]}",
        "",
        "## Filters",
        "",
        "```json",
        json.dumps(filters, indent=2, sort_keys=True),
        "```",
        "",
        "Non-default: " + (", ".join(f"{k}={v}" for k, v in sorted(active.items())) or "none"),
        "",
        "## Shape",
        "",
        SHAPE_NOTES[shape],
        "",
        "## Labeler agreement (kept judgments)",
        "",
        f"- pairs judged by 2+ labelers: {agreement.get('units', 0)} "
        f"on {agreement.get('multi_judged_tasks', 0)} tasks",
        f"- pairwise percent agreement: {_pct(agreement.get('percent'))}",
        f"- Krippendorff's alpha (ordinal: A better < tie < B better): "
        f"{_num(agreement.get('alpha'))}"
        + (
            f" (estimated on a uniform sample of {agreement['alpha_units']} pairs)"
            if agreement.get("alpha_units", 0) < agreement.get("units", 0)
            else ""
        ),
        "",
    ]
    labelers = [lab for lab in agreement.get("labelers", []) if lab.get("compared")]
    if labelers:
        lines += [
            "| labeler | judgments | agreement with majority | alpha vs majority |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {lab['labeler']} | {lab['judgments']} | {_pct(lab['percent'])} "
            f"| {'n/a' if lab['alpha'] is None else format(lab['alpha'], '.3f')} |"
            for lab in labelers
        ]
        lines.append("")
    if shape == "trl" and fmt in ("jsonl", "parquet"):  # hf: its README says how
        lines += [
            "## Loading",
            "",
            "```python",
            "from datasets import load_dataset",
            f'ds = load_dataset("{"json" if fmt == "jsonl" else "parquet"}", '
            f'data_files="{filename}", split="train")',
            "```",
            "",
        ]
    return "\n".join(lines)
