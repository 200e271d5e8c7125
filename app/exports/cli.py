"""`prefloop export preferences`: write a dataset file, its card, and a snapshot record."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer


def register(root: typer.Typer, group: Callable[[str, str], typer.Typer]) -> None:
    from app.cli import console, fail

    exp = group("export", "Export preference datasets (recorded as dataset snapshots).")

    @exp.command("preferences")
    def export_preferences(
        output: Annotated[
            Path, typer.Option("-o", "--output", help="file to write (--format hf: a directory)")
        ],
        shape: Annotated[str, typer.Option(help="trl | raw | rankings")] = "trl",
        format: Annotated[
            str, typer.Option(help="jsonl | parquet | csv | hf (datasets save_to_disk directory)")
        ] = "jsonl",
        since: Annotated[datetime | None, typer.Option(help="judged at or after (UTC)")] = None,
        until: Annotated[datetime | None, typer.Option(help="judged before (UTC)")] = None,
        labeler: Annotated[list[str], typer.Option(help="name or lab_ id; repeatable")] = [],  # noqa: B006
        model_version: Annotated[list[str], typer.Option(help="repeatable")] = [],  # noqa: B006
        tag: Annotated[list[str], typer.Option(help="repeatable")] = [],  # noqa: B006
        source: Annotated[list[str], typer.Option(help="repeatable")] = [],  # noqa: B006
        min_agreement: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.0,
        exclude_flagged: Annotated[bool, typer.Option("--exclude-flagged")] = False,
        ties: Annotated[bool, typer.Option("--ties/--no-ties", help="keep tie judgments")] = True,
        both_bad: Annotated[bool, typer.Option("--both-bad/--no-both-bad")] = True,
        margin: Annotated[bool, typer.Option("--margin", help="trl: add a margin column")] = False,
        user: Annotated[str | None, typer.Option(help="account recorded as exporter")] = None,
        push_to_hub: Annotated[
            str | None,
            typer.Option(help="--format hf: then upload to this Hub dataset repo (HF_TOKEN)"),
        ] = None,
        private: Annotated[bool, typer.Option("--private/--public", help="new Hub repo")] = True,
        license: Annotated[str, typer.Option(help="--format hf: card license id")] = "other",
    ) -> None:
        """Export judgments as trl pairs, raw judgments or per-task rankings."""
        from pydantic import ValidationError
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
        from sqlalchemy import select

        from app.db import session_scope
        from app.exports.hf import export_to_hf_dir, hf_target_ok
        from app.exports.query import FilterError
        from app.exports.schemas import ExportFilters
        from app.exports.service import Export, check, export_to_file
        from app.models import Role, User

        try:
            filters = ExportFilters(
                since=since,
                until=until,
                labelers=labeler,
                model_versions=model_version,
                tags=tag,
                sources=source,
                min_agreement=min_agreement,
                exclude_flagged=exclude_flagged,
                include_ties=ties,
                include_both_bad=both_bad,
                margin=margin,
            )
            check(shape, "parquet" if format == "hf" else format, filters)
            if push_to_hub and format != "hf":
                raise FilterError("--push-to-hub needs --format hf")
        except (ValidationError, FilterError) as e:
            fail(str(e))
        user_id = None
        if user:
            with session_scope() as session:
                row = session.execute(select(User.id, User.role).where(User.name == user)).first()
            if row is None:
                fail(f"no account named {user!r}")
            if row[1] not in (Role.researcher, Role.admin):
                fail(f"{user!r} is not a researcher or admin")
            user_id = row[0]
        total = Export(filters, shape, format).total()
        columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
        if format == "hf":
            try:  # before the export starts
                hf_target_ok(output)
            except FilterError as e:
                fail(str(e))
        with Progress(*columns, TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("judgments", total=total)

            def advance(n: int) -> None:
                bar.advance(task, n)

            if format == "hf":
                try:
                    snapshot_id, export = export_to_hf_dir(
                        filters, shape, output, user_id, advance, license
                    )
                except FilterError as e:
                    fail(str(e))
            else:
                snapshot_id, export = export_to_file(
                    filters, shape, format, output, user_id, advance, None
                )
            bar.update(task, completed=total)
        if format == "hf":
            console.print(
                f"wrote {export.stats.rows} {shape} rows to {output}/ (datasets save_to_disk; "
                f"snapshot {snapshot_id}, card: README.md)",
                highlight=False,
            )
            if push_to_hub:
                from app.exports.hf import push_to_hub as push

                try:
                    push(output, push_to_hub, private=private)
                except Exception as e:  # network, auth, permissions: the directory stays
                    fail(f"upload to {push_to_hub} failed: {type(e).__name__}: {e}")
                console.print(f"pushed to https://huggingface.co/datasets/{push_to_hub}")
            return
        console.print(
            f"wrote {export.stats.rows} {shape} rows to {output} "
            f"(snapshot {snapshot_id}, sha256 {export.digest.hexdigest[:16]}…); "
            f"card: {output.name}.card.md",
            highlight=False,
        )
