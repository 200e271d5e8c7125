"""`prefloop users ...` and `prefloop tokens ...`: accounts and personal API tokens. Every
change is audited as the operating-system account that ran the command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from app.models import Role


def register(root: typer.Typer, group: Callable[[str, str], typer.Typer]) -> None:
    from app.cli import console, fail

    users = group("users", "")
    tokens = group("tokens", "")

    def _run(fn, *args):
        """fn(session, *args) in one transaction; a UserError ends the command with its text."""
        from app.db import session_scope
        from app.users.service import UserError

        try:
            with session_scope() as session:
                return fn(session, *args)
        except UserError as e:
            fail(str(e))

    @users.command("create")
    def users_create(
        name: str,
        role: Annotated[Role, typer.Option(help="labeler | admin | researcher")] = Role.labeler,
        password: Annotated[str | None, typer.Option(help="omit to generate one")] = None,
    ) -> None:
        """Create an account; prints the generated password unless --password is given."""
        from app.users.service import create_user

        _, pw = _run(create_user, name, role, password)
        console.print(f"created {role.value} {name!r}", highlight=False)
        if password is None:
            console.print(f"password: {pw}", highlight=False)

    @users.command("list")
    def users_list() -> None:
        """Every account: role, state, live tokens."""
        from rich.table import Table

        from app.users.service import list_users

        rows = _run(lambda s: [(r.user, r.tokens) for r in list_users(s)])
        table = Table("id", "name", "role", "active", "tokens", "created")
        for u, n in rows:
            created = f"{u.created_at:%Y-%m-%d %H:%M}"
            table.add_row(
                str(u.id), u.name, u.role.value, "yes" if u.active else "no", str(n), created
            )
        console.print(table)

    @users.command("deactivate")
    def users_deactivate(name: str) -> None:
        """Take all access away now: sessions end, tokens stop working (reversible)."""
        from app.users.service import set_active

        _run(set_active, name, False)
        console.print(f"deactivated {name!r}", highlight=False)

    @users.command("activate")
    def users_activate(name: str) -> None:
        """Let a deactivated account sign in again (its unrevoked tokens work again)."""
        from app.users.service import set_active

        _run(set_active, name, True)
        console.print(f"activated {name!r}", highlight=False)

    @users.command("set-password")
    def users_set_password(
        name: str,
        password: Annotated[str | None, typer.Option(help="omit to generate one")] = None,
    ) -> None:
        """Set a new password (printed when generated); the user's sessions end."""
        from app.users.service import set_password

        _, pw = _run(set_password, name, password)
        console.print(f"password of {name!r} changed", highlight=False)
        if password is None:
            console.print(f"password: {pw}", highlight=False)

    @users.command("set-role")
    def users_set_role(
        name: str, role: Annotated[Role, typer.Argument(help="labeler | admin | researcher")]
    ) -> None:
        """Change a role; the user's sessions end."""
        from app.users.service import set_role

        _run(set_role, name, role)
        console.print(f"{name!r} is now {role.value}", highlight=False)

    @tokens.command("create")
    def tokens_create(
        user: Annotated[str, typer.Argument(help="the account the token acts as")],
        name: Annotated[str, typer.Option(help="a label for the token")] = "cli",
        expires_in: Annotated[
            str | None, typer.Option(help="e.g. 90d, 12h, 2w; default: never expires")
        ] = None,
    ) -> None:
        """Create a personal API token (stored hashed; shown only now)."""
        from app.users.service import UserError, create_token, parse_duration

        try:
            expiry = parse_duration(expires_in) if expires_in else None
        except UserError as e:
            fail(str(e))
        _, plain = _run(lambda s: create_token(s, user, name, None, None, expiry))
        console.print(plain, highlight=False)

    @tokens.command("list")
    def tokens_list(
        user: Annotated[str | None, typer.Option(help="only this account's tokens")] = None,
    ) -> None:
        """Tokens with their owner, prefix, state, expiry and last use (never the token)."""
        from rich.table import Table

        from app.users.service import list_tokens

        def when(v):
            return f"{v:%Y-%m-%d %H:%M}" if v else ""

        rows = _run(list_tokens, user)
        table = Table("id", "user", "name", "prefix", "state", "expires", "last used", "created")
        for r in rows:
            t = r.token
            table.add_row(
                str(t.id), r.user, t.name, t.prefix, r.state,
                when(t.expires_at), when(t.last_used_at), when(t.created_at),
            )  # fmt: skip
        console.print(table)

    @tokens.command("revoke")
    def tokens_revoke(
        token: Annotated[str, typer.Argument(help="token id, or its prefix as listed")],
    ) -> None:
        """Revoke a token: refused from its next request on."""
        from app.users.service import revoke_token

        def revoke(session):
            row = revoke_token(session, token)
            return row.token.id, row.user

        token_id, owner = _run(revoke)
        console.print(f"revoked token {token_id} of {owner!r}", highlight=False)
