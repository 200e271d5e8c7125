"""Worker-side commands, registered into `prefloop` through the `prefloop.cli` entry point:
`worker`, `up` (web server + worker) and `models bootstrap` (the first policy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer


def register(root: typer.Typer, group: Callable[[str, str], typer.Typer]) -> None:
    from app.cli import console, fail

    @root.command("worker")
    def worker_cmd(
        worker_id: Annotated[str | None, typer.Option("--id", help="default host:pid")] = None,
        once: Annotated[bool, typer.Option(help="exit when no queued run is left")] = False,
        fill: Annotated[
            bool, typer.Option(help="keep PREFLOOP_QUEUE_TARGET open tasks (auto generate)")
        ] = True,
        poll: Annotated[float, typer.Option(help="seconds between queue polls")] = 1.0,
    ) -> None:
        """Run the worker loop: claims queued runs (generate, reward, ppo) until stopped."""
        import logging

        from workers.runner import Worker

        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )
        w = Worker(worker_id=worker_id, poll_s=poll, fill_queue=fill)
        w.install_signal_handlers()
        w.serve_forever(exit_when_idle=once)

    @root.command("up")
    def up_cmd(
        host: Annotated[str | None, typer.Option(help="bind address")] = None,
        port: Annotated[int | None, typer.Option(help="port")] = None,
    ) -> None:
        """Run the web server and a worker side by side; Ctrl-C stops both cleanly."""
        from workers.supervisor import supervise

        raise typer.Exit(supervise(host, port))

    @group("models", "").command("bootstrap")
    def bootstrap_cmd() -> None:
        """Set up the first policy now (PREFLOOP_POLICY_MODEL or the embedded SmolLM2)."""
        from workers.bootstrap_policy import BootstrapError, ensure_active_policy

        try:
            mv = ensure_active_policy(log=lambda m: console.print(m, highlight=False))
        except BootstrapError as e:
            fail(str(e))
        console.print(f"active policy: {mv.version if mv else 'none'}")
