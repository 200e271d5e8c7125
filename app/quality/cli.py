"""`prefloop labelers ...`: list quality, pause/resume, exclude (and retrain), include."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer


def register(root: typer.Typer, group: Any) -> None:
    from app.cli import console, fail

    labelers = group("labelers", "Labeler quality: statistics, flags, pause, exclusion.")

    def _pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.0f}%"

    @labelers.command("list")
    def list_() -> None:
        """Every labeler's gold accuracy, agreement, position bias, speed, skips and flags."""
        from app.db import session_scope
        from app.quality.service import labeler_stats

        with session_scope() as s:
            stats = sorted(labeler_stats(s).values(), key=lambda x: x.name)
        console.print("name\tjudgments\tgold\tagreement\tfirst\tfast\tskips\tflags\tstate")
        for st in stats:
            a = st.all
            state = ("paused " if st.paused else "") + (
                f"excluded:{st.excluded}" if st.excluded else ""
            )
            console.print(
                f"{st.name}\t{a.judgments}\t{_pct(a.gold_accuracy)} ({a.gold_n})\t"
                f"{_pct(a.agreement)} ({a.compared})\t{_pct(a.first_share)}\t{_pct(a.fast_share)}\t"
                f"{_pct(st.skip_rate)}\t{','.join(st.flags) or '-'}\t{state.strip() or '-'}",
                highlight=False,
                markup=False,
            )

    def _act(name: str, fn: Callable[[Any, Any, int], str]) -> None:
        from app.db import session_scope
        from app.quality import service

        try:
            with session_scope() as s:
                msg = fn(s, service, service.labeler(s, name).id)
        except (service.NotFound, service.QualityError) as e:
            fail(str(e))
        console.print(msg, highlight=False, markup=False)

    @labelers.command("pause")
    def pause(name: str) -> None:
        """No new tasks for this labeler (their live lease stays theirs)."""
        _act(name, lambda s, svc, uid: svc.act(s, uid, "pause") or f"paused {name}")

    @labelers.command("resume")
    def resume(name: str) -> None:
        _act(name, lambda s, svc, uid: svc.act(s, uid, "resume") or f"resumed {name}")

    @labelers.command("clear-flag")
    def clear_flag(name: str) -> None:
        """Flags are recomputed from judgments made after now."""
        _act(name, lambda s, svc, uid: svc.act(s, uid, "clear-flag") or f"cleared {name}'s flag")

    @labelers.command("exclude")
    def exclude(
        name: str,
        retrain: Annotated[
            bool, typer.Option(help="queue a reward run (then policy) without them")
        ] = False,
        then_policy: Annotated[
            bool, typer.Option(help="with --retrain: the policy run after")
        ] = True,
        weighting: Annotated[
            str, typer.Option(help="with --retrain: trust weighting none|agreement|gold")
        ] = "none",
    ) -> None:
        """Exclude the labeler's judgments from training and trl exports (kept, and marked in
        raw exports); pauses them."""

        if weighting not in ("none", "agreement", "gold"):
            fail("--weighting must be none, agreement or gold")
        extra = {"weighting": weighting} if weighting != "none" else None

        def run(s: Any, svc: Any, uid: int) -> str:
            r = svc.exclude(s, uid, None, retrain, then_policy, extra)
            tail = f"; queued reward run {r.reward_run_id}" if r.reward_run_id else ""
            return f"excluded {r.judgments} judgments of {name} (exclusion {r.exclusion.id}){tail}"

        _act(name, run)

    @labelers.command("include")
    def include(name: str) -> None:
        """Undo the labeler's exclusion (recorded)."""

        def run(s: Any, svc: Any, uid: int) -> str:
            ex = svc.undo_exclusion(s, uid, None)
            return f"exclusion {ex.id} of {name} undone ({ex.judgment_count} judgments back)"

        _act(name, run)
