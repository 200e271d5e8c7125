"""Model versions over HTTP: any signed-in user may list them (store paths only for admins);
activation (also rollback: activate an earlier version) is admin only."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Query, Request

from app.audit import client_ip
from app.auth.deps import Admin, AnyUser, SessionDep
from app.models import ModelKind, Role
from app.models_registry import service
from app.models_registry.schemas import ModelVersionList, ModelVersionRead
from app.ops.errors import API_ERRORS, DbId

router = APIRouter(prefix="/api/v1/models", tags=["models"], responses=API_ERRORS)


@router.get("")
async def list_models(
    session: SessionDep,
    principal: AnyUser,
    kind: ModelKind | None = None,
    limit: int = Query(200, ge=1, le=1000),
) -> ModelVersionList:
    versions = await session.run_sync(service.list_versions, kind, limit)
    out = [ModelVersionRead.model_validate(v) for v in versions]
    if principal.role != Role.admin:
        for v in out:
            v.path = None
    return ModelVersionList(versions=out)


@router.post("/{version_id}/activate")
async def activate_model(
    request: Request, session: SessionDep, principal: Admin, version_id: DbId
) -> ModelVersionRead:
    """Verify the version loads (off the event loop), then flip the active pointer atomically."""
    try:
        mv = await session.run_sync(service.get_version, version_id)
        service.check_activatable(mv)
        previous = await session.run_sync(service.active_version, mv.kind)
        previous_id = previous.id if previous else None
        await session.commit()  # no transaction stays open while the model loads
        await asyncio.to_thread(service.verify, mv)
        mv = await session.run_sync(service.activate, version_id, False)
        if previous_id != mv.id:
            ip = client_ip(request)
            await session.run_sync(service.record_activation, principal, mv, previous_id, ip)
    except service.VersionNotFound as e:
        raise HTTPException(404, str(e)) from None
    except service.RegistryError as e:
        raise HTTPException(409, str(e)) from None
    return ModelVersionRead.model_validate(mv)
