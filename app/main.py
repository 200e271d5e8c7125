"""create_app(): middleware, static files, and every domain's routers."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import HTTPException as FastAPIHTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

import app as app_pkg
from app.auth.keys import private_dir, secret_key
from app.config import get_settings
from app.db import make_async_engine, make_async_sessionmaker
from app.metrics.process import MetricsMiddleware, forget_process
from app.ops.errors import error_body
from app.ops.headers import SecurityHeadersMiddleware
from app.ops.limits import BodyLimitMiddleware
from app.web import ROOT

log = logging.getLogger("prefloop")

LARGE_BODY_PREFIXES = ("/api/v1/import", "/admin/import")
API_PREFIXES = ("/api/", "/v1/")


def _routers() -> list[APIRouter]:
    """Every `router` in app/<domain>/api.py and app/<domain>/pages.py, in a stable order."""
    found = []
    for info in sorted(pkgutil.iter_modules(app_pkg.__path__), key=lambda m: m.name):
        if not info.ispkg:
            continue
        for part in ("api", "pages"):
            name = f"app.{info.name}.{part}"
            if importlib.util.find_spec(name) is not None:
                found.append(importlib.import_module(name).router)
    return found


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await app.state.engine.dispose()
    for hook in getattr(app.state, "shutdown_hooks", []):
        hook()


def create_app() -> FastAPI:
    settings = get_settings()
    private_dir(settings.data_dir)
    app = FastAPI(title="prefloop", version=app_pkg.__version__, lifespan=lifespan)
    app.state.engine = make_async_engine()
    app.state.sessionmaker = make_async_sessionmaker(app.state.engine)
    app.state.shutdown_hooks = [forget_process]  # its live gauges leave the /metrics sums
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key(settings),
        session_cookie="prefloop_session",
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.env == "production",
    )
    app.add_middleware(
        BodyLimitMiddleware,
        default=settings.max_body_bytes,
        large=settings.max_import_bytes,
        large_prefixes=LARGE_BODY_PREFIXES,
    )
    app.add_middleware(SecurityHeadersMiddleware, production=settings.env == "production")
    app.add_middleware(MetricsMiddleware)  # outermost: times the whole request
    app.mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static")
    for router in _routers():
        app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", [])), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse(error_body(errors, 422, request.url.path), status_code=422)

    @app.exception_handler(FastAPIHTTPException)
    async def _http(request: Request, exc: FastAPIHTTPException) -> Response:
        # a browser asking for a page without a session goes to the login form
        if (
            exc.status_code == 401
            and request.method == "GET"
            and not request.url.path.startswith(API_PREFIXES)
            and "text/html" in request.headers.get("accept", "")
        ):
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        if request.url.path.startswith("/v1/") and exc.status_code >= 400:
            body = error_body(str(exc.detail), exc.status_code, request.url.path)
            return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
        return await http_exception_handler(request, exc)

    return app
