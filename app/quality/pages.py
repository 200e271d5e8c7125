"""Admin pages: /admin/labelers (quality table, flags, actions, gold tasks) and
/admin/labelers/{id} (statistics, lineage, exclusions)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import select

from app.audit import client_ip
from app.auth.deps import Admin, SessionDep, check_csrf
from app.models import ComparisonTask, TaskCandidate, TaskStatus
from app.ops.errors import DbId
from app.quality import lineage, service
from app.quality.gold import GoldError, GoldIn, describe
from app.web import render
from ml.limits import INT32_MAX

router = APIRouter(prefix="/admin", include_in_schema=False)

SERIES_LABELS = {
    "agreement": "agreement",
    "gold_accuracy": "gold accuracy",
    "first_share": "first shown chosen",
    "fast_share": "fast answers",
}


def sparkline(values: list[float | None], width: int = 90, height: int = 22) -> Markup:
    """An inline SVG polyline of values in [0, 1] (gaps where None); numbers only, so safe."""
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    if not pts:
        return Markup('<span class="muted">–</span>')
    n = max(len(values) - 1, 1)
    coords = " ".join(
        f"{2 + i * (width - 4) / n:.1f},{height - 2 - v * (height - 4):.1f}" for i, v in pts
    )
    last_x, last_y = coords.split(" ")[-1].split(",")
    return Markup(
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img"><line x1="0" x2="{width}" y1="{height / 2}" y2="{height / 2}" '
        f'class="mid"/><polyline points="{coords}"/>'
        f'<circle cx="{last_x}" cy="{last_y}" r="2"/></svg>'
    )


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    data = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(request, data.get("csrf_token"))
    return data


def _gold_tasks(session: Any) -> list[dict[str, Any]]:
    """Every gold task with its accepted answers (two queries, however many there are)."""
    gold = (
        select(ComparisonTask.id, ComparisonTask.gold)
        .where(ComparisonTask.status == TaskStatus.gold)
        .order_by(ComparisonTask.id)
    )
    tasks = session.execute(gold).all()
    cands: dict[int, list[int]] = {}
    for tid, cid in session.execute(
        select(TaskCandidate.task_id, TaskCandidate.completion_id)
        .where(TaskCandidate.task_id.in_(gold.with_only_columns(ComparisonTask.id).order_by(None)))
        .order_by(TaskCandidate.task_id, TaskCandidate.position)
    ):
        cands.setdefault(tid, []).append(cid)
    return [{"id": t, "accepted": describe(g or {}, cands.get(t, []))} for t, g in tasks]


def _overview(session: Any) -> dict[str, Any]:
    stats = sorted(service.labeler_stats(session).values(), key=lambda s: (not s.flags, s.name))
    return {
        "labelers": stats,
        "gold_tasks": _gold_tasks(session),
        "show_gold": service.show_gold_accuracy(session),
    }


async def _page(
    request: Request, session: SessionDep, status_code: int = 200, **extra: Any
) -> Response:
    data = await session.run_sync(_overview)
    return render(
        request,
        "admin/labelers.html",
        status_code=status_code,
        nav="labelers",
        spark=sparkline,
        series_labels=SERIES_LABELS,
        **data,
        **extra,
    )


@router.get("/labelers", response_class=HTMLResponse)
async def labelers(request: Request, session: SessionDep, principal: Admin) -> Response:
    return await _page(request, session)


_RANK = re.compile(r"^\s*\d+(\s*[>=]\s*\d+)+\s*$")


def parse_answer(text: str) -> GoldIn:
    """The page's answer field: "a", "a, tie", or a ranking of 1-based positions "2 > 1 = 3"."""
    text = text.strip().lower()
    if _RANK.match(text):
        groups = [[int(p) - 1 for p in g.split("=")] for g in text.replace(" ", "").split(">")]
        return GoldIn(ranking=groups)
    choices = [c.strip() for c in re.split(r"[,\s]+(?:or\s+)?", text) if c.strip()]
    if not choices or any(c not in ("a", "b", "tie") for c in choices):
        raise GoldError("answer: 'a', 'b', 'tie' (several: 'a, tie') or a ranking like '2 > 1 = 3'")
    return GoldIn.model_validate({"choice": choices})


@router.post("/labelers/gold", response_model=None)
async def mark_gold(request: Request, session: SessionDep, principal: Admin) -> Response:
    form = await _form(request)
    raw_id = form.get("task_id", "").strip()
    if not raw_id.isascii() or not raw_id.isdigit() or not 0 < int(raw_id) <= INT32_MAX:
        return await _page(request, session, 400, error="task id must be a positive number")
    try:
        answer = parse_answer(form.get("answer", ""))
        ip = client_ip(request)
        await session.run_sync(lambda s: service.set_gold(s, int(raw_id), answer, principal, ip))
    except (GoldError, ValueError, service.NotFound) as e:
        return await _page(request, session, 400, error=str(e).splitlines()[0])
    return RedirectResponse("/admin/labelers#gold", status_code=303)


@router.post("/labelers/gold/{task_id}/remove", response_model=None)
async def unmark_gold(
    request: Request, task_id: DbId, session: SessionDep, principal: Admin
) -> Response:
    await _form(request)
    ip = client_ip(request)
    try:
        await session.run_sync(lambda s: service.unset_gold(s, task_id, principal, ip))
    except service.NotFound as e:
        raise HTTPException(404, str(e)) from None
    except service.QualityError as e:
        return await _page(request, session, 409, error=str(e))
    return RedirectResponse("/admin/labelers#gold", status_code=303)


@router.post("/labelers/settings", response_model=None)
async def settings(request: Request, session: SessionDep, principal: Admin) -> Response:
    form = await _form(request)
    on, ip = form.get("show_gold_accuracy") == "1", client_ip(request)
    await session.run_sync(lambda s: service.set_show_gold_accuracy(s, on, principal, ip))
    return RedirectResponse("/admin/labelers", status_code=303)


def _detail(session: Any, user_id: int) -> dict[str, Any]:
    user = service.labeler(session, user_id)
    stats = service.labeler_stats(session)[user.id]
    return {
        "labeler": user,
        "s": stats,
        "lineage": lineage.of_labeler(session, user.id, user.name),
        "exclusions": service.exclusions(session, user.id),
    }


@router.get("/labelers/{user_id}", response_class=HTMLResponse)
async def labeler_detail(
    request: Request, user_id: DbId, session: SessionDep, principal: Admin
) -> Response:
    try:
        data = await session.run_sync(_detail, user_id)
    except service.NotFound as e:
        raise HTTPException(404, str(e)) from None
    return render(
        request,
        "admin/labeler.html",
        nav="labelers",
        spark=sparkline,
        series_labels=SERIES_LABELS,
        **data,
    )


@router.post("/labelers/{user_id}/{action}", response_model=None)
async def act(
    request: Request, user_id: DbId, action: str, session: SessionDep, principal: Admin
) -> Response:
    """pause | resume | clear-flag | exclude | exclude-retrain | include (undo an exclusion)."""
    form = await _form(request)
    ip = client_ip(request)

    def run(s: Any) -> None:
        uid = service.labeler(s, user_id).id
        if action in ("exclude", "exclude-retrain"):
            service.exclude(s, uid, principal, retrain=action == "exclude-retrain", ip=ip)
        elif action == "include":
            service.undo_exclusion(s, uid, principal, ip)
        else:
            service.act(s, uid, action, principal, ip)

    try:
        await session.run_sync(run)
    except service.NotFound as e:
        raise HTTPException(404, str(e)) from None
    except service.QualityError as e:
        raise HTTPException(409, str(e)) from None
    back = form.get("back", "")
    return RedirectResponse(
        f"/admin/labelers/{user_id}" if back == "detail" else "/admin/labelers", status_code=303
    )
