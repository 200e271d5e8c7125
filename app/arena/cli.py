"""`prefloop arena start|stop|list|leaderboard`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer


def register(root: typer.Typer, group: Callable[[str, str], typer.Typer]) -> None:
    from app.cli import console, fail

    arena = group("arena", "Arena: battle campaigns between policy versions, the leaderboard.")

    @arena.command("start")
    def start_cmd(
        versions: Annotated[
            str, typer.Argument(help="versions, comma-separated; none: active + newest ready")
        ] = "",
        name: Annotated[str, typer.Option(help="campaign name")] = "",
        target: Annotated[int, typer.Option(help="stop after this many battles; 0: no cap")] = 0,
    ) -> None:
        """Start a battle campaign (the worker prepares the battles)."""
        from app.arena import service
        from app.audit.service import cli_actor
        from app.db import session_scope

        refs = [r.strip() for r in versions.split(",") if r.strip()]
        try:
            with session_scope() as s:
                c = service.create_campaign(s, refs, name, target)
                service.audit(s, cli_actor(), "arena.campaign_start", c, None)
                cid, cname = c.id, c.name
        except service.ArenaError as e:
            fail(str(e))
        console.print(f"campaign {cid} started: {cname}", highlight=False)

    @arena.command("stop")
    def stop_cmd(campaign: Annotated[int, typer.Argument(help="campaign id")]) -> None:
        """Stop making battles for a campaign."""
        from app.arena import service
        from app.audit.service import cli_actor
        from app.db import session_scope

        try:
            with session_scope() as s:
                c = service.stop_campaign(s, campaign)
                service.audit(s, cli_actor(), "arena.campaign_stop", c, None)
        except service.ArenaError as e:
            fail(str(e))
        console.print(f"campaign {campaign} stopped")

    @arena.command("list")
    def list_cmd() -> None:
        """Campaigns, newest first."""
        from app.arena import service
        from app.db import session_scope

        with session_scope() as s:
            rows = service.list_campaigns(s)
        if not rows:
            console.print("no arena campaigns yet")
        for c in rows:
            verdict = (c["decision"] or {}).get("verdict", "")
            console.print(
                f"{c['id']:>4}  {c['status']:<8} {c['purpose']:<6} {c['battles']:>5} battles "
                f"({c['judged']} judged)  {c['name']}  {verdict}",
                highlight=False,
            )

    @arena.command("leaderboard")
    def leaderboard_cmd(
        as_json: Annotated[bool, typer.Option("--json", help="the API's JSON")] = False,
    ) -> None:
        """Bradley-Terry ratings with bootstrap 95% intervals, best first."""
        from app.arena import service
        from app.db import session_scope

        with session_scope() as s:
            board = service.board(s)
        if as_json:
            console.print_json(json.dumps(board))
            return
        console.print(f"{board['battles']} judged battles; {board['method']}", highlight=False)
        for i, r in enumerate(board["ratings"], 1):
            console.print(
                f"{i:>3}. {r['rating']:7.1f}  [{r['lower']:7.1f}, {r['upper']:7.1f}]  "
                f"{r['battles']:>6} battles  {r['model']}",
                highlight=False,
            )
