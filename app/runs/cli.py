"""`prefloop runs ...`, `prefloop generate`, `prefloop worker` and `prefloop up`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from app.models import FINISHED_RUN_STATUSES, RunKind, RunStatus


def parse_params(items: list[str]) -> dict[str, Any]:
    """k=v pairs; values are JSON when they parse (numbers, lists, true), else strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r}: expected key=value")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def follow(run_id: int, poll_s: float = 0.5) -> RunStatus:
    """Show a run's progress bar and new log lines until it finishes; returns its status."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from app.cli import console
    from app.db import session_scope
    from app.runs.service import get_run

    seen = ""
    waited_hint = False
    started = time.monotonic()
    with Progress(
        TextColumn("[bold]run {task.fields[run]}[/bold] {task.fields[status]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[metrics]}"),
        console=console,
    ) as bar:
        task = bar.add_task("run", total=None, run=run_id, status="queued", metrics="")
        while True:
            with session_scope() as s:
                run = get_run(s, run_id)
                status, step, total = run.status, run.progress_step, run.progress_total
                log_tail, metrics = run.log_tail, dict(run.metrics or {})
            new = log_tail[len(seen) :] if log_tail.startswith(seen) else log_tail
            seen = log_tail
            for line in new.splitlines():
                bar.console.print(line, markup=False, highlight=False)
            shown = ", ".join(f"{k}={v}" for k, v in metrics.items() if isinstance(v, int | float))[
                :80
            ]
            bar.update(
                task,
                completed=step,
                total=total or None,
                status=status.value,
                metrics=shown,
            )
            if status in FINISHED_RUN_STATUSES:
                return status
            if status == RunStatus.queued and not waited_hint and time.monotonic() - started > 10:
                waited_hint = True
                bar.console.print("still queued: is a worker running? (`prefloop worker`)")
            time.sleep(poll_s)


def show(run_id: int) -> None:
    from app.cli import console, fail
    from app.db import session_scope
    from app.runs.service import RunNotFound, get_run

    try:
        with session_scope() as s:
            run = get_run(s, run_id)
    except RunNotFound as e:
        fail(str(e))
    console.print(
        f"[bold]run {run.id}[/bold] {run.kind.value} {run.status.value}  "
        f"progress {run.progress_step}/{run.progress_total}  attempts {run.attempts}  "
        f"worker {run.worker_id or '-'}",
        highlight=False,
    )
    console.print(f"params:  {json.dumps(run.params)}", markup=False, highlight=False)
    console.print(f"metrics: {json.dumps(run.metrics)}", markup=False, highlight=False)
    if run.error:
        console.print(f"[red]error:[/red] {run.error}", highlight=False)
    if run.log_tail:
        console.print(run.log_tail.rstrip(), markup=False, highlight=False)


def _start(kind: RunKind, params: dict[str, Any], wait: bool) -> None:
    from app.audit import record
    from app.cli import console, fail
    from app.db import session_scope
    from app.runs.service import RunError, create_run

    try:
        with session_scope() as s:
            run = create_run(s, kind, params, None)
            details = {"kind": kind.value, "params": run.params}
            record(s, None, "run.start", f"run {run.id}", details)
            run_id = run.id
    except RunError as e:  # e.g. a --param that does not validate: names the field
        fail(str(e))
    console.print(f"queued {kind.value} run {run_id}")
    if not wait:
        return
    try:
        status = follow(run_id)
    except KeyboardInterrupt:
        console.print(f"stopped following; run {run_id} goes on (`prefloop runs cancel {run_id}`)")
        raise typer.Exit(130) from None
    show(run_id)
    if status != RunStatus.succeeded:
        fail(f"run {run_id} {status.value}")


def register(root: typer.Typer, group: Callable[[str, str], typer.Typer]) -> None:
    from app.cli import console, fail

    runs = group("runs", "Worker runs: generate, reward, ppo.")

    @runs.command("start")
    def start_cmd(
        kind: Annotated[RunKind, typer.Argument(help="generate | reward | ppo")],
        param: Annotated[
            list[str] | None, typer.Option("--param", "-p", help="job parameter key=value")
        ] = None,
        wait: Annotated[bool, typer.Option(help="follow the run until it finishes")] = False,
    ) -> None:
        """Queue a run (a worker picks it up); --wait follows it with a progress bar."""
        _start(kind, parse_params(param or []), wait)

    @runs.command("list")
    def list_cmd(
        status: Annotated[RunStatus | None, typer.Option(help="filter by status")] = None,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    ) -> None:
        """Newest runs first."""
        from rich.table import Table

        from app.db import session_scope
        from app.runs.service import list_runs

        with session_scope() as s:
            rows = list_runs(s, status, None, limit)
        table = Table("id", "kind", "status", "progress", "attempts", "worker", "created", "error")
        for r in rows:
            table.add_row(
                str(r.id),
                r.kind.value,
                r.status.value,
                f"{r.progress_step}/{r.progress_total}",
                str(r.attempts),
                r.worker_id or "",
                f"{r.created_at:%Y-%m-%d %H:%M:%S}",
                (r.error or "")[:60],
            )
        console.print(table)

    @runs.command("show")
    def show_cmd(
        run_id: int,
        follow_: Annotated[
            bool, typer.Option("--follow", "-f", help="follow progress until it finishes")
        ] = False,
    ) -> None:
        """A run's status, params, metrics and log tail (--follow: live progress bar)."""
        if follow_:
            try:
                follow(run_id)
            except KeyboardInterrupt:
                raise typer.Exit(130) from None
        show(run_id)

    @runs.command("cancel")
    def cancel_cmd(run_id: int) -> None:
        """Cancel a queued run, or ask the worker running it to stop."""
        from app.audit import record
        from app.db import session_scope
        from app.runs.service import RunError, request_cancel

        try:
            with session_scope() as s:
                run = request_cancel(s, run_id)
                status = run.status.value
                details = {"kind": run.kind.value, "status": status}
                record(s, None, "run.cancel", f"run {run_id}", details)
        except RunError as e:
            fail(str(e))
        console.print(f"run {run_id}: {'cancel requested' if status == 'running' else status}")

    @root.command("generate")
    def generate_cmd(
        prompts: Annotated[int, typer.Option(min=1, help="how many prompts to generate for")] = 10,
        k: Annotated[int | None, typer.Option(min=2, max=16, help="candidates per task")] = None,
        versions: Annotated[
            str | None, typer.Option(help="A/B: comma-separated policy versions")
        ] = None,
        param: Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value")] = None,
        wait: Annotated[bool, typer.Option(help="follow the run until it finishes")] = True,
    ) -> None:
        """Queue a generate run (candidates from the active policy) and follow it."""
        params: dict[str, Any] = {"prompts": prompts, **parse_params(param or [])}
        if k:
            params["k"] = k
        if versions:
            params["versions"] = [v.strip() for v in versions.split(",") if v.strip()]
        _start(RunKind.generate, params, wait)
