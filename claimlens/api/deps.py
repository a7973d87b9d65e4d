"""FastAPI dependencies: settings, the runtime (object store + DB), the authenticated principal."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from claimlens.api.errors import ApiError
from claimlens.config import get_settings
from claimlens.core.audit import AuditContext
from claimlens.core.auth import Principal, authenticate
from claimlens.core.db import session_scope
from claimlens.core.pipeline import Runtime
from claimlens.core.storage import make_store


@lru_cache
def get_runtime() -> Runtime:
    settings = get_settings()
    return Runtime(settings=settings, store=make_store(settings))


# declared as a security scheme, so the OpenAPI document says which routes need a key
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey",
                              description="an API key (claimlens keys create / POST /v1/keys)")


def current_principal(x_api_key: Annotated[str | None, Security(API_KEY_HEADER)] = None) -> Principal:
    with session_scope(get_runtime().db_url) as s:
        principal = authenticate(s, x_api_key)
    if principal is None:
        raise ApiError(401, "unauthorized", "missing or invalid X-API-Key")
    return principal


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]


def request_meta(request: Request) -> tuple[str | None, str | None]:
    """(client address, request id) of the current request, for audit events."""
    return (request.client.host if request.client else None), getattr(request.state, "request_id", None)


def audit_context(request: Request, principal: PrincipalDep) -> AuditContext:
    addr, request_id = request_meta(request)
    return AuditContext(principal.name, principal.role, addr, request_id, channel="api")


AuditDep = Annotated[AuditContext, Depends(audit_context)]
