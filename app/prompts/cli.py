"""`prefloop import prompts|comparisons FILE`: unlabeled prompts and pre-generated comparisons."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from app.prompts.parsing import Reject
    from app.prompts.service import Kind

SKIP_HELP = "import the good lines; write the bad ones to FILE.rejects.jsonl with line and reason"


def report_rejects(file: Path, rejects: list[Reject]) -> None:
    """Print the first rejected lines and write them all to FILE.rejects.jsonl."""
    from app.cli import console
    from app.prompts.parsing import rejects_path, write_rejects

    if not rejects:
        return
    path = rejects_path(str(file))
    write_rejects(path, rejects)
    for r in rejects[:20]:
        console.print(f"{file}:{r.line}: skipped: {r.message}", highlight=False, markup=False)
    console.print(f"{len(rejects)} line(s) skipped, written to {path}", highlight=False)


def show_errors(file: Path, errors: list[tuple[int, str]]) -> None:
    from app.cli import console

    for line, msg in errors[:200]:
        console.print(f"{file}:{line}: {msg}", highlight=False, markup=False)
    if len(errors) > 200:
        console.print(f"... and {len(errors) - 200} more", highlight=False)


def register(root: typer.Typer, group: Callable[[str, str], typer.Typer]) -> None:
    from app.cli import console, fail, read_input

    def _import(kind: Kind, file: Path, fmt: str, required: int | None, skip: bool) -> None:
        from app.audit import record
        from app.db import session_scope
        from app.prompts import parsing, service

        data = read_input(file)
        with console.status(f"validating {file} ..."):
            try:
                records, rejects = parsing.parse_all(data, kind, fmt, str(file))
                if skip:
                    report_rejects(file, rejects)
                    if not records:
                        fail(f"no line of {file} can be imported; nothing was imported")
                service.accept(records, rejects, skip)
            except parsing.FileErrors as e:
                show_errors(file, e.errors)
                fail(f"{len(e.errors)} error(s) in {file}; nothing was imported")
        with console.status(f"writing {len(records)} records ..."):
            with session_scope() as session:
                summary = service.write(session, kind, records, required)
                details = {**summary.__dict__, "rejected": len(rejects), "bytes": len(data)}
                details.update(format=fmt, skip_invalid=skip)
                record(session, None, f"import.{kind}", str(file), details)
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
        skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help=SKIP_HELP)] = False,
    ) -> None:
        """Import prompts that need candidates (JSONL or CSV)."""
        _import("prompts", file, format, None, skip_invalid)

    @imp.command("comparisons")
    def import_comparisons(
        file: Path,
        format: Annotated[str, typer.Option(help="auto | jsonl | csv")] = "auto",
        required_judgments: Annotated[int | None, typer.Option(min=1, max=100)] = None,
        skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help=SKIP_HELP)] = False,
    ) -> None:
        """Import pre-generated comparisons (a prompt plus K >= 2 completions)."""
        _import("comparisons", file, format, required_judgments, skip_invalid)
