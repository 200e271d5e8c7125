"""`prefloop models list|activate|bootstrap`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from app.models import ModelKind


def register(root: typer.Typer, group: Callable[[str, str], typer.Typer]) -> None:
    from app.cli import console, fail

    models = group("models", "Model versions: list, activate (and roll back).")

    @models.command("list")
    def list_cmd(
        kind: Annotated[ModelKind | None, typer.Option(help="policy | reward")] = None,
        wide: Annotated[bool, typer.Option(help="also show base model and store path")] = False,
    ) -> None:
        """List model versions, newest first (the active ones are marked)."""
        from rich.table import Table

        from app.db import session_scope
        from app.models_registry.service import list_versions

        with session_scope() as s:
            versions = list_versions(s, kind)
        if not versions:
            console.print("no model versions yet (`prefloop worker` sets up the first policy)")
            return
        table = Table("id")
        table.add_column("version", no_wrap=True, min_width=max(len(v.version) for v in versions))
        for col in [
            "kind",
            "status",
            "parent",
            "created",
            *(["base model", "path"] if wide else []),
        ]:
            table.add_column(col)
        for v in versions:
            style = "bold green" if v.status.value == "active" else None
            row = [str(v.id), v.version, v.kind.value, v.status.value, str(v.parent_id or "")]
            row.append(f"{v.created_at:%Y-%m-%d %H:%M}")
            if wide:
                row += [v.base_model or "", v.path]
            table.add_row(*row, style=style)
        console.print(table)

    @models.command("activate")
    def activate_cmd(
        version: Annotated[str, typer.Argument(help="version name or id (older = rollback)")],
    ) -> None:
        """Verify VERSION loads, then make it the active one of its kind (atomic)."""
        from app.db import session_scope
        from app.models_registry.service import (
            RegistryError,
            activate,
            active_version,
            get_version,
            record_activation,
        )

        try:
            with console.status(f"verifying {version} loads ..."), session_scope() as s:
                previous = active_version(s, get_version(s, version).kind)
                previous_id = previous.id if previous else None
                mv = activate(s, version)
                if previous_id != mv.id:
                    record_activation(s, None, mv, previous_id, None)
                name, kind = mv.version, mv.kind.value
        except RegistryError as e:
            fail(str(e))
        console.print(f"active {kind}: {name}")
