"""The FastAPI application: versioned routes under /v1, OpenAPI at /v1/openapi.json, JSON errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from claimlens import __version__
from claimlens.api import log_privacy, observability
from claimlens.api.errors import install_error_handlers
from claimlens.api.ratelimit import RateLimitMiddleware
from claimlens.api.routes import audit, claims, decisions, keys, objects, photos, queue
from claimlens.config import get_settings
from claimlens.core.auth import ensure_bootstrap_admin
from claimlens.core.db import session_scope
from claimlens.ops.logs import configure_logging
from claimlens.ui import install as install_workbench

log = logging.getLogger("claimlens.api")


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    if settings.bootstrap_admin_key:
        # one upsert: API worker processes starting together all succeed; a changed key replaces the old
        # one (which stops working); a key already registered under another name stops the start (ValueError)
        with session_scope(settings.effective_database_url) as s:
            outcome = ensure_bootstrap_admin(s, settings.bootstrap_admin_key.get_secret_value())
        log.info("bootstrap admin key: %s", outcome)
    yield


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    app = FastAPI(title="claimlens", version=__version__, lifespan=lifespan,
                  openapi_url="/v1/openapi.json", docs_url="/v1/docs", redoc_url=None,
                  description="Photo-evidence verification for auto-insurance claims.")
    install_error_handlers(app)
    log_privacy.install()  # uvicorn's access line without query strings (a search may hold a plate or VIN)
    v1 = APIRouter(prefix="/v1")
    v1.include_router(queue.router)  # before claims: GET /v1/claims lists, /v1/claims/{id} reads one
    v1.include_router(claims.router)
    v1.include_router(decisions.router)
    v1.include_router(objects.router)
    v1.include_router(audit.router)
    v1.include_router(photos.router)
    v1.include_router(keys.router)
    app.include_router(v1)
    install_workbench(app)  # the investigators' web app under /ui (claimlens/ui)
    app.include_router(observability.health)
    app.include_router(observability.router)
    # added last = runs first: the request id, logs and metrics (outermost: they see every answer, 429s
    # included), then the rate limits
    app.add_middleware(RateLimitMiddleware, settings=settings)
    app.add_middleware(observability.RequestContextMiddleware)
    return app


app = create_app()
