"""`prefloop import prompts|comparisons FILE`: unlabeled prompts and pre-generated comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(root: typer.Typer, group) -> None:  # type: ignore[no-untyped-def]
    from app.cli import console, fail, read_input

    def _import(kind: str, file: Path, fmt: str, required: int | None) -> None:
        from app.config import get_settings
        from app.db import session_scope
        from app.prompts import parsing, store

        data = read_input(file)
        with console.status(f"validating {file} ..."):
            try:
                records = parsing.parse(data, kind, fmt, str(file))  # type: ignore[arg-type]
            except parsing.FileErrors as e:
                for line, msg in e.errors[:200]:
                    console.print(f"{file}:{line}: {msg}", highlight=False, markup=False)
                fail(f"{len(e.errors)} error(s) in {file}; nothing was imported")
        with console.status(f"writing {len(records)} records ..."):
            with session_scope() as session:
                if kind == "prompts":
                    summary = store.import_prompts(session, records)
                else:
                    default = required or get_settings().default_required_judgments
                    summary, _ = store.import_comparisons(session, records, default)
        console.print(
            f"{summary.records} records: {summary.prompts_created} prompts, "
            f"{summary.completions_created} completions, {summary.tasks_created} tasks created, "
            f"{summary.duplicates} already present"
        )

    imp = group("import", "")

    @imp.command("prompts")
    def import_prompts(
        file: Path,
        format: Annotated[str, typer.Option(help="auto | jsonl | csv")] = "auto",
    ) -> None:
        """Import prompts that need candidates (JSONL or CSV)."""
        _import("prompts", file, format, None)

    @imp.command("comparisons")
    def import_comparisons(
        file: Path,
        format: Annotated[str, typer.Option(help="auto | jsonl | csv")] = "auto",
        required_judgments: Annotated[int | None, typer.Option(min=1, max=100)] = None,
    ) -> None:
        """Import pre-generated comparisons (a prompt plus K >= 2 completions)."""
        _import("comparisons", file, format, required_judgments)
