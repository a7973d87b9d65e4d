"""Investigators' decisions on findings and claims, and the per-check precision table they add up to.

Findings are rebuilt on every report revision (new row ids), so a decision points at a finding through a
stable ``finding_key``: a hash of what the finding is about (check, code, photo, the other claim or photo).
The same fact found again in a later revision keeps its decision. Decisions are never edited: a new row
supersedes the previous one for the same key, so the history stays readable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claimlens.core.models import ClaimOutcome, Decision, FindingRow, utcnow

FINDING_ACTIONS = ("confirm", "dismiss", "escalate")
OUTCOMES = ("cleared", "referred_siu", "fraud_confirmed")
DISMISS_REASONS = {
    "same_car_second_visit": "same car, second visit (legitimate re-survey)",
    "legitimate_reuse": "legitimate reuse (e.g. the same underwriting photo)",
    "wrong_match": "the photos do not show the same thing",
    "document_or_generic_photo": "a document or generic photo, not evidence",
    "explained_by_claimant": "explained by the claimant with proof",
    "other": "other (see note)",
}
SEVERITY_LABELS = {0: "info", 1: "low", 2: "medium", 3: "high"}


class DecisionError(ValueError):
    """A decision that cannot be recorded (unknown finding, action or reason)."""


def finding_key(*, check: str, code: str, photo_id: str | None, evidence: dict[str, Any] | None) -> str:
    """Stable identity of a finding across report revisions (16 hex characters)."""
    ev = evidence or {}
    other = ev.get("linked_claim_id") or ev.get("other_photo_id") or ev.get("matched_photo_id") or ""
    raw = "|".join([check, code, photo_id or "", str(other)])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def row_key(row: FindingRow) -> str:
    return finding_key(check=row.check, code=row.code, photo_id=row.photo_id, evidence=row.evidence)


@dataclass(frozen=True)
class DecisionInput:
    action: str
    finding_key: str | None = None
    reason: str | None = None
    note: str | None = None


def record_decision(s: Session, claim_id: str, principal: str, body: DecisionInput) -> Decision:
    """Validate and store one decision; an outcome also updates the claim's current outcome."""
    note = (body.note or "").strip() or None
    if note and len(note) > 2000:
        raise DecisionError("note is longer than 2000 characters")
    if body.finding_key:
        if body.action not in FINDING_ACTIONS:
            raise DecisionError(f"a finding decision is one of {', '.join(FINDING_ACTIONS)}")
        if body.action == "dismiss" and body.reason not in DISMISS_REASONS:
            raise DecisionError(f"dismissing needs a reason: one of {', '.join(DISMISS_REASONS)}")
        if body.action != "dismiss" and body.reason is not None:
            raise DecisionError("only a dismissal takes a reason (use the note)")
        rows = s.scalars(select(FindingRow).where(FindingRow.claim_id == claim_id)).all()
        match = next((r for r in rows if row_key(r) == body.finding_key), None)
        if match is None:
            raise DecisionError(f"claim {claim_id} has no finding {body.finding_key}")
        d = Decision(claim_id=claim_id, kind="finding", finding_key=body.finding_key, code=match.code,
                     check=match.check, severity=match.severity, photo_id=match.photo_id, action=body.action,
                     reason=body.reason, note=note, principal=principal)
    else:
        if body.action not in OUTCOMES:
            raise DecisionError(f"a claim outcome is one of {', '.join(OUTCOMES)}")
        if body.reason is not None:
            raise DecisionError("an outcome takes no reason (use the note)")
        d = Decision(claim_id=claim_id, kind="outcome", finding_key="", action=body.action, note=note,
                     principal=principal)
        current = s.get(ClaimOutcome, claim_id)
        if current is None:
            s.add(ClaimOutcome(claim_id=claim_id, outcome=body.action, principal=principal))
        else:
            current.outcome, current.principal, current.decided_at = body.action, principal, utcnow()
    s.add(d)
    s.flush()
    return d


def decision_json(d: Decision) -> dict[str, Any]:
    return {"id": d.id, "claim_id": d.claim_id, "kind": d.kind, "finding_key": d.finding_key or None,
            "code": d.code, "check": d.check,
            "severity": SEVERITY_LABELS.get(d.severity) if d.severity is not None else None,
            "photo_id": d.photo_id, "action": d.action, "reason": d.reason, "note": d.note,
            "principal": d.principal, "created_at": d.created_at.isoformat() if d.created_at else None}


def claim_decisions(s: Session, claim_id: str) -> list[Decision]:
    """Every decision on the claim, oldest first (the history)."""
    return list(s.scalars(select(Decision).where(Decision.claim_id == claim_id)
                          .order_by(Decision.created_at, Decision.id)).all())


def current_by_key(decisions: list[Decision]) -> dict[str, Decision]:
    """The latest decision per finding key ('' is the claim outcome)."""
    out: dict[str, Decision] = {}
    for d in decisions:
        out[d.finding_key] = d
    return out


def merge_into_report(s: Session, report: dict[str, Any]) -> dict[str, Any]:
    """The stored report (the analysis result of one revision, never rewritten by a decision) with the
    decisions recorded so far: each finding gets its ``finding_key``, and ``decisions`` holds the current one
    per finding key, the claim outcome and the full history. PostgreSQL (``decisions``) is the record; the
    API and the workbench serve this merge so both always show the same state."""
    for f in report.get("findings", []):
        f["finding_key"] = finding_key(check=f["check"], code=f["code"], photo_id=f.get("photo_id"),
                                       evidence=f.get("evidence"))
    history = claim_decisions(s, report["claim_id"])
    current = current_by_key(history)
    report["decisions"] = {
        "outcome": decision_json(current[""]) if "" in current else None,
        "findings": {k: decision_json(d) for k, d in current.items() if k},
        "history": [decision_json(d) for d in history]}
    return report


def precision_table(s: Session) -> list[dict[str, Any]]:
    """Confirmed vs dismissed per finding code and severity, from each finding's current decision.

    precision = confirmed / (confirmed + dismissed); escalations are counted but decide nothing yet.
    """
    rows = s.execute(select(Decision.claim_id, Decision.finding_key, Decision.code, Decision.check,
                            Decision.severity, Decision.action)
                     .where(Decision.kind == "finding").order_by(Decision.created_at, Decision.id)).all()
    latest: dict[tuple[str, str], Any] = {}
    for r in rows:
        latest[(r.claim_id, r.finding_key)] = r
    table: dict[tuple[str, int], dict[str, Any]] = {}
    for r in latest.values():
        cell = table.setdefault((r.code, r.severity), {
            "code": r.code, "check": r.check, "severity": SEVERITY_LABELS.get(r.severity, str(r.severity)),
            "confirmed": 0, "dismissed": 0, "escalated": 0})
        cell[{"confirm": "confirmed", "dismiss": "dismissed", "escalate": "escalated"}[r.action]] += 1
    out = []
    for (_code, sev), cell in sorted(table.items(), key=lambda kv: (-kv[0][1], kv[0][0])):
        decided = cell["confirmed"] + cell["dismissed"]
        cell["decided"] = decided
        cell["precision"] = round(cell["confirmed"] / decided, 4) if decided else None
        out.append(cell)
    return out
