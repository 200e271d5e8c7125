"""Core commands: serve, db upgrade, users, tokens, imports of prompts and comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.models import Role


def register(root: typer.Typer, group) -> None:  # type: ignore[no-untyped-def]
    from app.cli import console, fail, read_input

    @root.command()
    def serve(
        host: Annotated[str | None, typer.Option(help="bind address")] = None,
        port: Annotated[int | None, typer.Option(help="port")] = None,
        workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    ) -> None:
        """Run the web server (uvicorn)."""
        import uvicorn

        from app.config import get_settings

        s = get_settings()
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host or s.host,
            port=port or s.port,
            workers=workers,
            proxy_headers=True,
            log_level="info",
        )

    @group("db", "").command("upgrade")
    def db_upgrade(revision: str = "head") -> None:
        """Apply migrations up to REVISION (default: head)."""
        from app.ops.migrate import upgrade

        upgrade(revision=revision)
        console.print(f"database at {revision}")

    @group("users", "").command("create")
    def users_create(
        name: str,
        role: Annotated[Role, typer.Option(help="labeler | admin | researcher")] = Role.labeler,
        password: Annotated[str | None, typer.Option(help="omit to generate one")] = None,
    ) -> None:
        """Create an account; prints the generated password unless --password is given."""
        from app.db import session_scope
        from app.users.service import UserError, create_user

        try:
            with session_scope() as session:
                user, pw = create_user(session, name, role, password)
        except UserError as e:
            fail(str(e))
        console.print(f"created {role.value} {name!r}")
        if password is None:
            console.print(f"password: {pw}", highlight=False)

    @group("tokens", "").command("create")
    def tokens_create(
        user: Annotated[str, typer.Argument(help="the account the token acts as")],
        name: Annotated[str, typer.Option(help="a label for the token")] = "cli",
    ) -> None:
        """Create a personal API token (stored hashed; shown only now)."""
        from app.db import session_scope
        from app.users.service import UserError, create_token

        try:
            with session_scope() as session:
                _, plain = create_token(session, user, name)
        except UserError as e:
            fail(str(e))
        console.print(plain, highlight=False)

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

    @root.command()
    def bootstrap(
        demo: Annotated[bool, typer.Option(help="load the demo comparisons")] = True,
    ) -> None:
        """Make sure an admin exists (printing its password once) and load the demo set."""
        from app.config import get_settings
        from app.core.demo import DEMO_FILE
        from app.db import session_scope
        from app.prompts import parsing, store
        from app.users.service import ensure_admin

        settings = get_settings()
        with session_scope() as session:
            password = ensure_admin(session)
            if demo:
                records = parsing.parse(DEMO_FILE.read_bytes(), "comparisons", "jsonl")
                summary, _ = store.import_comparisons(
                    session, records, settings.default_required_judgments
                )
        if password:
            secret = settings.data_dir / "admin-password.txt"
            secret.parent.mkdir(parents=True, exist_ok=True)
            secret.write_text(password + "\n")
            secret.chmod(0o600)
            console.print(
                f"[bold]admin account created[/bold] name: admin  password: {password}"
                f"  (also saved to {secret})",
                highlight=False,
            )
        if demo:
            console.print(f"demo set: {summary.tasks_created} new comparison tasks")
