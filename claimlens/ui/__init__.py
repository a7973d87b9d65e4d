"""The investigator's workbench: server-rendered pages under /ui on the same process, database and object
store as the API (docs/workbench.md). :func:`install` is the one call the API app makes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Mount the pages, their static files and the handlers that turn UI errors into HTML."""
    from claimlens.ui.pages import install_handlers, router

    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.include_router(router)
    install_handlers(app)
