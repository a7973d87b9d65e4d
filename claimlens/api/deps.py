"""FastAPI dependencies: settings, the runtime (object store + DB), the authenticated principal."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Header

from claimlens.api.errors import ApiError
from claimlens.config import get_settings
from claimlens.core.auth import Principal, authenticate
from claimlens.core.db import session_scope
from claimlens.core.pipeline import Runtime
from claimlens.core.storage import make_store


@lru_cache
def get_runtime() -> Runtime:
    settings = get_settings()
    return Runtime(settings=settings, store=make_store(settings))


def current_principal(x_api_key: Annotated[str | None, Header()] = None) -> Principal:
    with session_scope(get_runtime().db_url) as s:
        principal = authenticate(s, x_api_key)
    if principal is None:
        raise ApiError(401, "unauthorized", "missing or invalid X-API-Key")
    return principal


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
