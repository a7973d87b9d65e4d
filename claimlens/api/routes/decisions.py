"""Investigators' decisions on findings and claim outcomes, and the per-check precision table."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from claimlens.api.deps import AuditDep, PrincipalDep, RuntimeDep
from claimlens.api.errors import ApiError
from claimlens.api.routes.claims import load_claim
from claimlens.core.audit import record
from claimlens.core.auth import Principal
from claimlens.core.db import session_scope
from claimlens.core.decisions import (
    DecisionError,
    DecisionInput,
    claim_decisions,
    current_by_key,
    decision_json,
    precision_table,
    record_decision,
)

router = APIRouter(tags=["decisions"])


def can_decide(principal: Principal) -> bool:
    """Investigators and admins decide; adjusters created the claim and do not judge it."""
    return principal.role in ("investigator", "admin")


class DecisionBody(BaseModel):
    finding_key: str | None = Field(None, max_length=64, description="the finding (from GET .../decisions or "
                                    "the report's findings[].finding_key); omit for a claim outcome")
    action: Literal["confirm", "dismiss", "escalate", "cleared", "referred_siu", "fraud_confirmed"]
    reason: str | None = Field(None, max_length=64, description="required to dismiss; see the reasons list")
    note: str | None = Field(None, max_length=2000)


class DecisionsPublic(BaseModel):
    claim_id: str
    outcome: dict[str, Any] | None
    current: dict[str, dict[str, Any]]
    history: list[dict[str, Any]]


@router.post("/claims/{claim_id}/decisions", status_code=201)
def post_decision(claim_id: str, body: DecisionBody, principal: PrincipalDep, rt: RuntimeDep,
                  audit: AuditDep) -> dict[str, Any]:
    """Confirm / dismiss (with a reason) / escalate a finding, or set the claim's outcome."""
    if not can_decide(principal):
        raise ApiError(403, "forbidden", f"role {principal.role} cannot record decisions")
    with session_scope(rt.db_url) as s:
        claim = load_claim(s, principal, claim_id)
        try:
            d = record_decision(s, claim.id, principal.name, DecisionInput(
                action=body.action, finding_key=body.finding_key, reason=body.reason, note=body.note))
        except DecisionError as exc:
            raise ApiError(422, "invalid_decision", str(exc)) from exc
        record(s, audit, "decision", claim_id=claim.id, target=d.finding_key or "outcome", decision=d.action,
               reason=d.reason, code=d.code)
        return decision_json(d)


@router.get("/claims/{claim_id}/decisions", response_model=DecisionsPublic)
def get_decisions(claim_id: str, principal: PrincipalDep, rt: RuntimeDep, audit: AuditDep) -> DecisionsPublic:
    """The current decision per finding, the claim outcome, and the full history (oldest first)."""
    with session_scope(rt.db_url) as s:
        claim = load_claim(s, principal, claim_id)
        history = claim_decisions(s, claim.id)
        record(s, audit, "read_claim", claim_id=claim.id, target="decisions")
    current = current_by_key(history)
    return DecisionsPublic(claim_id=claim.id, outcome=decision_json(current[""]) if "" in current else None,
                           current={k: decision_json(d) for k, d in current.items() if k},
                           history=[decision_json(d) for d in history])


@router.get("/stats/decisions")
def decision_stats(principal: PrincipalDep, rt: RuntimeDep) -> dict[str, Any]:
    """Per finding code and severity: confirmed vs dismissed (current decisions) and the precision, so
    thresholds can be tuned from outcomes."""
    if not principal.can_read_all():
        raise ApiError(403, "forbidden", f"role {principal.role} cannot read decision statistics")
    with session_scope(rt.db_url) as s:
        return {"rows": precision_table(s)}
