"""`prefloop import preferences FILE`: labeled preference data as judgments of a named source."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from app.prompts.cli import SKIP_HELP


def register(root: typer.Typer, group: Callable[[str, str], typer.Typer]) -> None:
    from app.cli import console, fail, read_input

    @group("import", "").command("preferences")
    def import_preferences(
        file: Path,
        format: Annotated[str, typer.Option(help="auto | hf | oasst | arena")] = "auto",
        source: Annotated[
            str | None, typer.Option(help="name the judgments are attributed to (default: file)")
        ] = None,
        skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help=SKIP_HELP)] = False,
    ) -> None:
        """Import already-labeled preferences (HF chosen/rejected rows, OpenAssistant trees or
        FastChat arena battle logs)."""
        from app.audit import record
        from app.db import session_scope
        from app.labeled_import import parsers, service
        from app.prompts.cli import report_rejects, show_errors
        from app.prompts.parsing import FileErrors

        data = read_input(file)
        try:
            name = service.check_source(source or file.stem)
        except ValueError as e:
            fail(str(e))
        with console.status(f"validating {file} ..."):
            try:
                fmt, records, rejects = parsers.parse_all(data, format)
                if skip_invalid:
                    report_rejects(file, rejects)
                    if not records:
                        fail(f"no line of {file} can be imported; nothing was imported")
                parsers.accept(records, rejects, skip_invalid)
            except FileErrors as e:
                show_errors(file, e.errors)
                fail(f"{len(e.errors)} error(s) in {file}; nothing was imported")
        with console.status(f"writing {len(records)} ranked comparisons ..."):
            try:
                with session_scope() as session:
                    s = service.import_preferences(session, records, name, fmt)
                    details = {**s.__dict__, "rejected": len(rejects), "bytes": len(data)}
                    details.update(format=fmt, skip_invalid=skip_invalid, file=str(file))
                    record(session, None, "import.preferences", name, details)
            except ValueError as e:
                fail(str(e))
        console.print(
            f"{s.records} {fmt} comparisons from source {name!r}: {s.tasks_created} tasks and "
            f"{s.judgments_created} judgments created, {s.already_present} already present"
            + (f", {s.battles_created} battles" if s.battles_created else ""),
            highlight=False,
        )
