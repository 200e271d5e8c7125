"""Researcher pages: export form with a count preview, snapshot cards, agreement chart."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from app.auth.deps import Researcher, SessionDep
from app.exports import service
from app.exports.api import Filters
from app.exports.query import FilterError
from app.exports.schemas import FORMATS, SHAPES, SnapshotId
from app.models import Completion, DatasetSnapshot, Judgment, ModelVersion, Role, User
from app.preferences.pseudonym import labeler_pseudonym
from app.web import render

router = APIRouter(prefix="/research", include_in_schema=False)


async def _choices(session: AsyncSession) -> dict[str, Any]:
    """Labelers (name and pseudonym), judgment/candidate sources and model versions."""
    users = (
        await session.execute(
            select(User.id, User.name).where(User.role != Role.researcher).order_by(User.name)
        )
    ).all()
    sources = set(
        await session.scalars(
            select(Judgment.source).distinct().where(Judgment.source.is_not(None))
        )
    )
    sources |= set(
        await session.scalars(
            select(Completion.source).distinct().where(Completion.source.is_not(None))
        )
    )
    versions = await session.scalars(select(ModelVersion.version).order_by(ModelVersion.id.desc()))
    return {
        "labelers": [{"name": n, "pseudonym": labeler_pseudonym(uid)} for uid, n in users],
        "sources": sorted(sources),
        "versions": list(versions),
    }


@router.get("", response_class=HTMLResponse)
async def research_home(
    request: Request,
    session: SessionDep,
    principal: Researcher,
    filters: Filters,
    shape: str = "trl",
    format: str = "jsonl",
    preview: bool = False,
) -> Response:
    """The export form; with ?preview=1 it also shows how many rows the filters select."""
    counts, error = None, None
    if preview:
        try:
            counts = await run_in_threadpool(service.preview, filters)
        except FilterError as e:
            error = str(e)
    snapshots = (
        await session.scalars(select(DatasetSnapshot).order_by(DatasetSnapshot.id.desc()).limit(20))
    ).all()
    return render(
        request,
        "research/index.html",
        f=filters,
        shape=shape if shape in SHAPES else "trl",
        format=format if format in FORMATS else "jsonl",
        shapes=SHAPES,
        formats=FORMATS,
        counts=counts,
        error=error,
        snapshots=snapshots,
        **await _choices(session),
        status_code=422 if error else 200,
    )


@router.get("/agreement", response_class=HTMLResponse)
async def agreement_page(
    request: Request, session: SessionDep, principal: Researcher, filters: Filters
) -> Response:
    """Percent agreement and ordinal alpha, overall and per labeler, with a bar chart."""
    try:
        report, error = await run_in_threadpool(service.agreement_report, filters), None
    except FilterError as e:
        report, error = None, str(e)
    return render(
        request,
        "research/agreement.html",
        f=filters,
        report=report,
        error=error,
        **await _choices(session),
        status_code=422 if error else 200,
    )


@router.get("/exports/{snapshot_id}", response_class=HTMLResponse)
async def snapshot_page(
    request: Request, snapshot_id: SnapshotId, session: SessionDep, principal: Researcher
) -> Response:
    """One dataset snapshot and its card."""
    snap = await session.get(DatasetSnapshot, snapshot_id)
    if snap is None:
        raise HTTPException(404, f"snapshot {snapshot_id} does not exist")
    creator = await session.scalar(select(User.name).where(User.id == snap.created_by_id))
    return render(request, "exports/snapshot.html", snap=snap, creator=creator)
