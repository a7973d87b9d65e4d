"""The FastAPI application: versioned routes under /v1, OpenAPI at /v1/openapi.json, JSON errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from sqlalchemy import text

from claimlens import __version__
from claimlens.api import log_privacy
from claimlens.api.deps import get_runtime
from claimlens.api.errors import install_error_handlers
from claimlens.api.request_ids import RequestIdMiddleware
from claimlens.api.routes import audit, claims, decisions, keys, objects, photos, queue
from claimlens.config import get_settings
from claimlens.core.auth import ensure_bootstrap_admin
from claimlens.core.db import session_scope
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

    @v1.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness plus a database round trip."""
        with session_scope(get_runtime().db_url) as s:
            s.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    app.include_router(v1)
    install_workbench(app)  # the investigators' web app under /ui (claimlens/ui)
    app.add_middleware(RequestIdMiddleware)
    return app


app = create_app()
