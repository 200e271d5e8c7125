"""`prefloop` command line. Domains add commands in app/<domain>/cli.py via register()."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

import app as app_pkg

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

root = typer.Typer(
    help="prefloop: rank completions, train a reward model, PPO the policy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
GROUPS: dict[str, typer.Typer] = {}
for _name, _help in [
    ("db", "Database migrations."),
    ("users", "Accounts."),
    ("tokens", "Personal API tokens."),
    ("import", "Import prompts, comparisons and labeled preferences."),
]:
    GROUPS[_name] = typer.Typer(help=_help, no_args_is_help=True)
    root.add_typer(GROUPS[_name], name=_name)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def group(name: str, help: str) -> typer.Typer:
    """The sub-command group `name`, created on first use."""
    if name not in GROUPS:
        GROUPS[name] = typer.Typer(help=help, no_args_is_help=True)
        root.add_typer(GROUPS[name], name=name)
    return GROUPS[name]


#: entry-point group through which other packages (the worker) add commands without app/
#: importing them
PLUGIN_GROUP = "prefloop.cli"


_discovered: list[str] = []


def _discover() -> None:
    """Register every domain's commands, then the plugins' (once per process)."""
    if _discovered:
        return
    _discovered.append("done")
    for info in sorted(pkgutil.iter_modules(app_pkg.__path__), key=lambda m: m.name):
        name = f"app.{info.name}.cli"
        if info.ispkg and importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(root, group)
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        ep.load().register(root, group)


def main() -> None:
    _discover()
    try:
        root()
    except KeyboardInterrupt:
        sys.exit(130)


def read_input(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    if not path.is_file():
        fail(f"{path}: no such file")
    return path.read_bytes()
