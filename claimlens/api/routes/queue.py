"""The queue (``GET /v1/claims``) and the linked-claims graph (``GET /v1/claims/{id}/links``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from claimlens.api.deps import AuditDep, PrincipalDep, RuntimeDep
from claimlens.api.errors import ApiError
from claimlens.api.routes.claims import load_claim
from claimlens.core.audit import record
from claimlens.core.db import session_scope
from claimlens.core.links import MAX_DEPTH, MAX_NODES, link_graph
from claimlens.core.queue import MAX_PAGE, QueueFilters, facet_counts, list_claims

router = APIRouter(prefix="/claims", tags=["queue"])


class QueueRow(BaseModel):
    claim_id: str
    score: int | None
    status: str
    owner: str
    plate: str | None
    vin: str | None
    policy_id: str | None
    loss_type: str | None
    report_time: str | None
    created_at: datetime
    outcome: str | None
    severity_counts: dict[str, int]
    top_codes: list[str]


class QueuePublic(BaseModel):
    claims: list[QueueRow]
    total: int
    next_cursor: str | None
    counts: dict[str, dict[str, int]] | None = None


@router.get("", response_model=QueuePublic)
def list_queue(principal: PrincipalDep, rt: RuntimeDep, audit: AuditDep,
               severity: str | None = None, code: str | None = None, check: str | None = None,
               status: str | None = None,
               decision: Annotated[str | None, Query(description="undecided|cleared|referred_siu|fraud_confirmed")] = None,
               date_from: datetime | None = None, date_to: datetime | None = None,
               adjuster: str | None = None,
               q: Annotated[str | None, Query(description="claim id (prefix), plate, VIN or policy id")] = None,
               cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
               counts: bool = False) -> QueuePublic:
    """Claims by score (highest first), filtered; adjusters get their own claims only. Pass ``cursor`` from
    the previous page's ``next_cursor``; ``counts=true`` adds how many claims each filter value gives."""
    try:
        f = QueueFilters(severity=severity, code=code, check=check, status=status, decision=decision,
                         date_from=date_from, date_to=date_to, adjuster=adjuster, q=q).validate()
        with session_scope(rt.db_url) as s:
            page = list_claims(s, principal, f, cursor=cursor, limit=limit)
            facets = facet_counts(s, principal, f) if counts else None
            record(s, audit, "list_claims", target=None, filters={k: str(v) for k, v in f.active().items()},
                   returned=len(page.claims))
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc
    return QueuePublic(claims=[QueueRow(**c) for c in page.claims], total=page.total,
                       next_cursor=page.next_cursor, counts=facets)


class LinksPublic(BaseModel):
    claim_id: str
    depth: int
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    truncated: bool


@router.get("/{claim_id}/links", response_model=LinksPublic)
def read_links(claim_id: str, principal: PrincipalDep, rt: RuntimeDep, audit: AuditDep,
               depth: Annotated[int, Query(ge=1, le=MAX_DEPTH)] = 2,
               max_nodes: Annotated[int, Query(ge=2, le=MAX_NODES)] = MAX_NODES) -> LinksPublic:
    """The claims linked to this one (shared or near-duplicate photos, VINs, plates), breadth-first up to
    ``depth`` hops and ``max_nodes`` claims; each edge says why. Claims you may not read are left out."""
    with session_scope(rt.db_url) as s:
        claim = load_claim(s, principal, claim_id)
        graph = link_graph(s, principal, claim.id, depth=depth, max_nodes=max_nodes)
        record(s, audit, "read_links", claim_id=claim.id, depth=depth, nodes=len(graph.nodes))
    return LinksPublic(**graph.to_json())
