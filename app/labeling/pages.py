"""The labeling page: one HTML shell; static/label.js drives it through the JSON API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.auth.deps import Labeler, SessionDep
from app.config import get_settings
from app.guidelines import service as guidelines
from app.web import render

router = APIRouter(include_in_schema=False)


@router.get("/label", response_class=HTMLResponse)
async def label(request: Request, session: SessionDep, principal: Labeler) -> Response:
    settings = get_settings()
    config = {
        "user_id": principal.user_id,
        "criteria": settings.criteria,
        "flags": settings.flags,
    }
    g = await guidelines.get(session)
    from app.quality import service as quality

    def own_gold(s: Any) -> tuple[int, int] | None:
        if not quality.show_gold_accuracy(s):
            return None
        return quality.own_gold_accuracy(s, principal.user_id)

    gold = await session.run_sync(own_gold)
    return render(request, "labeling/label.html", config=config, guidelines=g, gold=gold)
