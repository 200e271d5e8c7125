"""Core commands: serve, db upgrade, bootstrap (admin account and demo set)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer


def register(root: typer.Typer, group: Callable[[str, str], typer.Typer]) -> None:
    from app.cli import console

    @root.command()
    def serve(
        host: Annotated[str | None, typer.Option(help="bind address")] = None,
        port: Annotated[int | None, typer.Option(help="port")] = None,
        workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    ) -> None:
        """Run the web server (uvicorn)."""
        import os

        import uvicorn

        # each worker process sizes its connection pools from its share (app.db.web_pools)
        os.environ["PREFLOOP_WEB_WORKERS"] = str(max(1, workers))

        from app.config import get_settings
        from app.metrics.multiproc import prepare_multiproc_dir

        s = get_settings()
        # before any worker process imports prometheus_client: every process writes its
        # metrics there and /metrics merges them (PROMETHEUS_MULTIPROC_DIR, emptied here)
        prepare_multiproc_dir(s.data_dir)
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
            from app.auth.keys import private_dir, write_private

            secret = private_dir(settings.data_dir) / "admin-password.txt"
            write_private(secret, password + "\n")  # 0600 from the first byte
            console.print(
                f"[bold]admin account created[/bold] name: admin  password: {password}"
                f"  (also saved to {secret})",
                highlight=False,
            )
        if demo:
            console.print(f"demo set: {summary.tasks_created} new comparison tasks")
