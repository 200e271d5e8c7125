"""Arena over HTTP: campaigns (admin) and the leaderboard (admin, researcher). Labelers get
nothing here: the battles they judge come anonymously through the labeling API."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from app.arena import service
from app.arena.schemas import CampaignCreate, CampaignList, CampaignOut, LeaderboardOut
from app.audit import client_ip, record
from app.auth.deps import Admin, Researcher, SessionDep
from app.ops.errors import API_ERRORS, DbId

router = APIRouter(prefix="/api/v1/arena", tags=["arena"], responses=API_ERRORS)


def _one(session, cid: int) -> dict:  # type: ignore[no-untyped-def]
    return next(c for c in service.list_campaigns(session, 1000) if c["id"] == cid)


@router.get("/leaderboard")
async def leaderboard(session: SessionDep, _: Researcher) -> LeaderboardOut:
    """Bradley-Terry ratings with bootstrap 95% intervals and win rates per pair."""
    return LeaderboardOut.model_validate(await session.run_sync(service.board))


@router.get("/campaigns")
async def list_campaigns(session: SessionDep, _: Admin) -> CampaignList:
    rows = await session.run_sync(service.list_campaigns)
    return CampaignList(campaigns=[CampaignOut.model_validate(r) for r in rows])


@router.post("/campaigns", status_code=201)
async def create_campaign(
    request: Request, body: CampaignCreate, session: SessionDep, admin: Admin
) -> CampaignOut:
    """Start battles between versions (the worker generates them ahead of labelers)."""
    if body.candidate is not None and body.versions:
        raise HTTPException(422, "give either versions or candidate, not both")

    def create(s):  # type: ignore[no-untyped-def]
        c = service.create_campaign(
            s, body.versions, body.name, body.target_battles, admin.user_id, body.candidate
        )
        details = {"versions": body.versions, "candidate": body.candidate}
        record(s, admin, "arena.start", f"campaign {c.id}", details, client_ip(request))
        return _one(s, c.id)

    try:
        row = await session.run_sync(create)
    except service.ArenaError as e:
        raise HTTPException(e.status, str(e)) from None
    return CampaignOut.model_validate(row)


@router.post("/campaigns/{campaign_id}/stop")
async def stop_campaign(
    request: Request, campaign_id: DbId, session: SessionDep, admin: Admin
) -> CampaignOut:
    def stop(s):  # type: ignore[no-untyped-def]
        service.stop_campaign(s, campaign_id)
        record(s, admin, "arena.stop", f"campaign {campaign_id}", {}, client_ip(request))
        return _one(s, campaign_id)

    try:
        row = await session.run_sync(stop)
    except service.CampaignNotFound as e:
        raise HTTPException(404, str(e)) from None
    return CampaignOut.model_validate(row)
