"""Guidelines JSON API: everyone reads, admins write."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from app.audit import client_ip
from app.auth.deps import Admin, AnyUser, SessionDep
from app.guidelines import service
from app.ops.errors import API_ERRORS

router = APIRouter(prefix="/api/v1", tags=["guidelines"], responses=API_ERRORS)


class GuidelinesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    markdown: str = Field(max_length=service.MAX_CHARS)


class GuidelinesOut(BaseModel):
    markdown: str = Field(description="as the admin wrote it; empty when never set")
    html: str = Field(description="rendered with raw HTML disabled (safe to embed)")
    updated_at: datetime | None


def _out(g: service.Guidelines) -> GuidelinesOut:
    return GuidelinesOut(markdown=g.markdown, html=str(g.html), updated_at=g.updated_at)


@router.get("/guidelines", response_model=GuidelinesOut)
async def read(session: SessionDep, _: AnyUser) -> GuidelinesOut:
    return _out(await service.get(session))


@router.put("/guidelines", response_model=GuidelinesOut)
async def write(
    request: Request, body: GuidelinesIn, session: SessionDep, principal: Admin
) -> GuidelinesOut:
    try:
        saved = await service.save(session, body.markdown, principal, client_ip(request))
    except ValueError as e:
        raise HTTPException(422, str(e)) from None
    return _out(saved)
