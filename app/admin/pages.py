"""Admin HTML pages: dashboard, runs (start, watch, cancel) and model versions."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.admin import forms, service
from app.admin.gate_chart import gate_view
from app.audit import client_ip, record
from app.auth.deps import Admin, SessionDep, check_csrf
from app.models import FINISHED_RUN_STATUSES, Run
from app.models_registry import service as registry
from app.ops.errors import DbId
from app.runs import service as run_service
from app.web import render

router = APIRouter(prefix="/admin", include_in_schema=False)


def run_view(run: Run) -> dict[str, Any]:
    """The JSON-safe view of a run the detail page's script starts from."""

    def iso(v: Any) -> str | None:
        return v.isoformat() if v else None

    return {
        "id": run.id,
        "kind": str(run.kind),
        "status": str(run.status),
        "params": run.params or {},
        "progress_step": run.progress_step,
        "progress_total": run.progress_total,
        "metrics": run.metrics or {},
        "log_tail": run.log_tail or "",
        "error": run.error,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "heartbeat_at": iso(run.heartbeat_at),
        "cancel_requested": run.cancel_requested,
    }


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, session: SessionDep, principal: Admin) -> Response:
    data = await session.run_sync(service.dashboard)
    return render(request, "admin/dashboard.html", d=data, nav="dashboard")


async def _runs_page(
    request: Request, session: SessionDep, status_code: int = 200, **extra: Any
) -> Response:
    from app.config import get_settings
    from ml.policy.params import WHEN

    runs = await session.run_sync(run_service.list_runs, None, None, 100)
    return render(
        request,
        "admin/runs.html",
        status_code=status_code,
        runs=runs,
        fields=forms.FIELDS,
        policy_fields=forms.POLICY_FIELDS,
        policy_when=WHEN,
        default_algorithm=get_settings().policy_algorithm,
        nav="runs",
        **extra,
    )


@router.get("/runs", response_class=HTMLResponse)
async def runs(request: Request, session: SessionDep, principal: Admin) -> Response:
    return await _runs_page(request, session)


@router.post("/runs", response_model=None)
async def start_run(request: Request, session: SessionDep, principal: Admin) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    kind = form.get("kind", "")
    try:
        params = forms.parse(kind, form)
    except forms.FormError as exc:
        return await _runs_page(
            request, session, status_code=400, error=str(exc), open_kind=kind, submitted=form
        )
    from app.runs.service import RunError, create_run

    try:
        run = await session.run_sync(create_run, kind, params, principal.user_id)
    except RunError as exc:
        return await _runs_page(request, session, status_code=400, error=str(exc))
    record(
        session,
        principal,
        "run.start",
        f"run {run.id}",
        {"kind": kind, "params": params},
        client_ip(request),
    )
    return RedirectResponse(f"/admin/runs/{run.id}", status_code=303)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_detail(
    request: Request, run_id: DbId, session: SessionDep, principal: Admin
) -> Response:
    try:
        run = await session.run_sync(run_service.get_run, run_id)
    except run_service.RunNotFound:
        raise HTTPException(404, f"run {run_id} does not exist") from None
    return render(
        request,
        "admin/run_detail.html",
        run=run,
        view=run_view(run),
        gate=gate_view(run.metrics),
        finished=run.status in FINISHED_RUN_STATUSES,
        nav="runs",
    )


@router.post("/runs/{run_id}/cancel", response_model=None)
async def cancel_run(
    request: Request, run_id: DbId, session: SessionDep, principal: Admin
) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    try:
        run = await session.run_sync(run_service.request_cancel, run_id)
    except run_service.RunNotFound:
        raise HTTPException(404, f"run {run_id} does not exist") from None
    except run_service.RunError as exc:
        raise HTTPException(409, str(exc)) from None
    details = {"kind": str(run.kind), "status": str(run.status)}
    record(session, principal, "run.cancel", f"run {run_id}", details, client_ip(request))
    return RedirectResponse(f"/admin/runs/{run_id}", status_code=303)


async def _models_page(
    request: Request, session: SessionDep, status_code: int = 200, **extra: Any
) -> Response:
    from app.arena.service import page_view

    versions = await session.run_sync(service.versions_by_kind)
    return render(
        request,
        "admin/models.html",
        status_code=status_code,
        versions=versions,
        arena=await session.run_sync(page_view),
        nav="models",
        **extra,
    )


@router.get("/models", response_class=HTMLResponse)
async def models(request: Request, session: SessionDep, principal: Admin) -> Response:
    return await _models_page(request, session)


@router.post("/models/{version_id}/activate", response_model=None)
async def activate_version(
    request: Request, version_id: DbId, session: SessionDep, principal: Admin
) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))

    try:
        mv = await session.run_sync(registry.get_version, version_id)
    except registry.VersionNotFound:
        raise HTTPException(404, f"model version {version_id} does not exist") from None
    try:
        registry.check_activatable(mv)
        previous = await session.run_sync(registry.active_version, mv.kind)
        previous_id = previous.id if previous else None
        await session.commit()  # no transaction stays open while the model loads
        await asyncio.to_thread(registry.verify, mv)  # loading a model must not block the loop
        mv = await session.run_sync(registry.activate, version_id, False)
        if previous_id != mv.id:
            ip = client_ip(request)
            await session.run_sync(registry.record_activation, principal, mv, previous_id, ip)
    except registry.RegistryError as exc:
        return await _models_page(request, session, status_code=409, error=str(exc))
    return RedirectResponse(f"/admin/models#version-{version_id}", status_code=303)
