"""Export JSON API (researcher or admin): streamed files, previews, snapshots, agreement."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app.audit import client_ip, record
from app.auth.deps import Researcher, SessionDep
from app.exports import service
from app.exports.query import FilterError
from app.exports.schemas import ExportFilters, Format, PreviewOut, Shape, SnapshotId, SnapshotOut
from app.exports.writers import MEDIA_TYPES
from app.models import DatasetSnapshot
from app.ops.errors import API_ERRORS, err

router = APIRouter(prefix="/api/v1/exports", tags=["exports"], responses=API_ERRORS)


def _message(e: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()[:5]
    )


def filters_from_query(
    since: Annotated[str | None, Query(description="ISO 8601, UTC if no offset")] = None,
    until: Annotated[str | None, Query(description="ISO 8601, UTC if no offset")] = None,
    labeler: Annotated[list[str], Query(description="name or lab_ id; repeatable")] = [],  # noqa: B006
    model_version: Annotated[list[str], Query(description="repeatable")] = [],  # noqa: B006
    tag: Annotated[list[str], Query(description="repeatable or comma-separated")] = [],  # noqa: B006
    source: Annotated[list[str], Query(description="repeatable or comma-separated")] = [],  # noqa: B006
    min_agreement: Annotated[str | None, Query(description="0..1")] = None,
    exclude_flagged: bool = False,
    include_ties: bool = True,
    include_both_bad: bool = True,
    margin: bool = False,
) -> ExportFilters:
    """Filters from query parameters; empty form fields mean "no filter"."""

    def split(values: list[str]) -> list[str]:
        return [part for v in values for part in v.split(",")]

    raw: dict[str, Any] = {
        "since": since or None,
        "until": until or None,
        "labelers": labeler,
        "model_versions": model_version,
        "tags": split(tag),
        "sources": split(source),
        "exclude_flagged": exclude_flagged,
        "include_ties": include_ties,
        "include_both_bad": include_both_bad,
        "margin": margin,
    }
    if min_agreement:
        raw["min_agreement"] = min_agreement
    try:
        return ExportFilters.model_validate(raw)
    except ValidationError as e:
        raise HTTPException(422, _message(e)) from None


Filters = Annotated[ExportFilters, Depends(filters_from_query)]


@router.get(
    "/preferences",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the dataset, streamed; X-Dataset-Snapshot and Link name its card",
            "content": {t: {} for t in MEDIA_TYPES.values()},
        },
        422: err("unknown shape, format or filter value"),
    },
)
async def export_preferences(
    request: Request,
    session: SessionDep,
    user: Researcher,
    filters: Filters,
    shape: Shape = "trl",
    format: Format = "jsonl",
) -> StreamingResponse:
    """Stream a preference dataset; recorded as a dataset snapshot with a card."""
    try:
        await run_in_threadpool(service.check, shape, format, filters)
    except FilterError as e:
        raise HTTPException(422, str(e)) from None
    snap = await session.run_sync(service.start_snapshot, shape, format, filters, user.user_id)
    details = {"shape": shape, "format": format, "filters": snap.filters}
    record(session, user, "export.preferences", f"snapshot {snap.id}", details, client_ip(request))
    # commit now: the body streams after this handler returns, and the snapshot is finished
    # from another connection once the last byte is out
    await session.commit()
    filename = f"prefloop-{shape}-{snap.id}.{format}"
    export = service.Export(filters, shape, format)
    return StreamingResponse(
        service.stream_and_finish(snap.id, export, filename),
        media_type=MEDIA_TYPES[format],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Dataset-Snapshot": str(snap.id),
            "Link": f'</api/v1/exports/{snap.id}>; rel="describedby"',
        },
    )


@router.get("/preview", response_model=PreviewOut)
async def preview_counts(user: Researcher, filters: Filters) -> PreviewOut:
    """How many judgments, tasks and rows of each shape the filters select."""
    try:
        return await run_in_threadpool(service.preview, filters)
    except FilterError as e:
        raise HTTPException(422, str(e)) from None


@router.get("/agreement")
async def agreement(user: Researcher, filters: Filters) -> dict[str, Any]:
    """Pairwise percent agreement and ordinal Krippendorff's alpha, overall and per labeler."""
    try:
        return await run_in_threadpool(service.agreement_report, filters)
    except FilterError as e:
        raise HTTPException(422, str(e)) from None


@router.get("", response_model=list[SnapshotOut])
async def list_snapshots(
    session: SessionDep, user: Researcher, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[SnapshotOut]:
    """Recent dataset snapshots, newest first."""
    rows = await session.scalars(
        select(DatasetSnapshot).order_by(DatasetSnapshot.id.desc()).limit(limit)
    )
    return [SnapshotOut.model_validate(s) for s in rows]


@router.get("/{snapshot_id}", response_model=SnapshotOut)
async def get_snapshot(
    snapshot_id: SnapshotId, session: SessionDep, user: Researcher
) -> SnapshotOut:
    """One snapshot: filters, row count, sha256 and its dataset card."""
    snap = await session.get(DatasetSnapshot, snapshot_id)
    if snap is None:
        raise HTTPException(404, f"snapshot {snapshot_id} does not exist")
    return SnapshotOut.model_validate(snap)


@router.get(
    "/{snapshot_id}/card",
    # Response, not PlainTextResponse: its errors are JSON (ErrorOut), only the card is Markdown
    response_class=Response,
    responses={200: {"content": {"text/markdown": {"schema": {"type": "string"}}}}},
)
async def get_card(
    snapshot_id: SnapshotId, session: SessionDep, user: Researcher
) -> PlainTextResponse:
    """The snapshot's dataset card as Markdown (empty until the export finished)."""
    snap = await session.get(DatasetSnapshot, snapshot_id)
    if snap is None:
        raise HTTPException(404, f"snapshot {snapshot_id} does not exist")
    if not snap.card:
        raise HTTPException(404, f"snapshot {snapshot_id} has no card yet (export unfinished)")
    return PlainTextResponse(snap.card, media_type="text/markdown; charset=utf-8")
