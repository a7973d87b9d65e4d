"""The audit log (admins): who read which claim, report or photo, decisions, key changes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from claimlens.api.deps import PrincipalDep, RuntimeDep
from claimlens.api.errors import ApiError
from claimlens.core.audit import AuditFilters, event_json, query_events
from claimlens.core.db import session_scope

router = APIRouter(tags=["audit"])


@router.get("/audit")
def read_audit(principal: PrincipalDep, rt: RuntimeDep, principal_name: Annotated[str | None, Query(
               alias="principal")] = None, action: str | None = None, claim_id: str | None = None,
               since: datetime | None = None, until: datetime | None = None, cursor: str | None = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    """Audit events, newest first, with filters and cursor pagination (``next_cursor``)."""
    if principal.role != "admin":
        raise ApiError(403, "forbidden", "only admins read the audit log")
    f = AuditFilters(principal=principal_name, action=action, claim_id=claim_id, since=since, until=until)
    try:
        with session_scope(rt.db_url) as s:
            rows, nxt = query_events(s, f, cursor=cursor, limit=limit)
            return {"events": [event_json(e) for e in rows], "next_cursor": nxt}
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc
