"""`prefloop users ...` and `prefloop tokens ...`: accounts and personal API tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from app.models import Role


def register(root: typer.Typer, group: Callable[[str, str], typer.Typer]) -> None:
    from app.cli import console, fail

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
