"""The investigators' queue: claims sorted by score with filters, search, counts and cursor pagination.

One query builder serves ``GET /v1/claims`` and the workbench's queue page, so both always agree. Ordering is
(score descending, unscored last, claim id) and the cursor carries the last row's (score, id): a page never
repeats or skips claims while new ones arrive, unlike offsets.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from claimlens.core.auth import Principal
from claimlens.core.models import Claim, ClaimOutcome, FindingRow

SEVERITIES = {"info": 0, "low": 1, "medium": 2, "high": 3}
STATUSES = ("open", "analysing", "final")
DECISION_STATES = ("undecided", "cleared", "referred_siu", "fraud_confirmed")
MAX_PAGE = 200


@dataclass(frozen=True)
class QueueFilters:
    severity: str | None = None  # claims with at least one finding of this severity
    code: str | None = None  # ... with a finding of this code
    check: str | None = None  # ... with a finding from this check
    status: str | None = None
    decision: str | None = None  # undecided or one of the outcomes
    date_from: datetime | None = None  # claim created at or after
    date_to: datetime | None = None  # ... before
    adjuster: str | None = None  # the API key name that created the claim
    q: str | None = None  # claim id (prefix), plate, VIN or policy id

    def validate(self) -> QueueFilters:
        if self.severity and self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        if self.status and self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        if self.decision and self.decision not in DECISION_STATES:
            raise ValueError(f"decision must be one of {', '.join(DECISION_STATES)}")
        if self.q and len(self.q) > 64:
            raise ValueError("search text is longer than 64 characters")
        return self

    def active(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) not in (None, "")}


def _sort_score():  # type: ignore[no-untyped-def]
    return func.coalesce(Claim.score, -1)


def encode_cursor(score: int | None, claim_id: str) -> str:
    raw = json.dumps([score if score is not None else -1, claim_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        score, claim_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return int(score), str(claim_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc


def _scope(q: Select, principal: Principal) -> Select:
    """Adjusters see only the claims they created."""
    return q if principal.can_read_all() else q.where(Claim.owner == principal.name)


def _finding_filter(q: Select, f: QueueFilters) -> Select:
    conds = []
    if f.severity:
        conds.append(FindingRow.severity == SEVERITIES[f.severity])
    if f.code:
        conds.append(FindingRow.code == f.code)
    if f.check:
        conds.append(FindingRow.check == f.check)
    if conds:
        q = q.where(Claim.id.in_(select(FindingRow.claim_id).where(*conds)))
    return q


def _filtered(q: Select, f: QueueFilters, *, skip: str | None = None) -> Select:
    """Apply every filter except ``skip`` (the facet being counted)."""
    q = _finding_filter(q, f if skip not in ("severity", "code", "check") else replace(f, **{skip: None}))
    if f.status and skip != "status":
        q = q.where(Claim.status == f.status)
    if f.decision and skip != "decision":
        decided = select(ClaimOutcome.claim_id)
        if f.decision == "undecided":
            q = q.where(Claim.id.not_in(decided))
        else:
            q = q.where(Claim.id.in_(decided.where(ClaimOutcome.outcome == f.decision)))
    if f.date_from:
        q = q.where(Claim.created_at >= f.date_from)
    if f.date_to:
        q = q.where(Claim.created_at < f.date_to)
    if f.adjuster and skip != "adjuster":
        q = q.where(Claim.owner == f.adjuster)
    if f.q:
        text = f.q.strip()
        norm = text.upper().replace(" ", "")
        q = q.where(or_(Claim.id == text, Claim.id.startswith(text, autoescape=True),
                        func.upper(Claim.plate) == norm, func.upper(Claim.vin) == norm,
                        Claim.policy_id == text))
    return q


@dataclass
class QueuePage:
    claims: list[dict[str, Any]]
    next_cursor: str | None
    total: int


def list_claims(s: Session, principal: Principal, f: QueueFilters, *, cursor: str | None = None,
                limit: int = 50) -> QueuePage:
    """One page of the queue, with the total number of claims matching the filters."""
    limit = max(1, min(limit, MAX_PAGE))
    base = _filtered(_scope(select(Claim.id), principal), f)
    total = int(s.scalar(select(func.count()).select_from(base.subquery())) or 0)
    q = _filtered(_scope(select(Claim, ClaimOutcome.outcome), principal), f).outerjoin(
        ClaimOutcome, ClaimOutcome.claim_id == Claim.id)
    if cursor:
        score, last_id = decode_cursor(cursor)
        q = q.where(or_(_sort_score() < score, and_(_sort_score() == score, Claim.id > last_id)))
    rows = s.execute(q.order_by(_sort_score().desc(), Claim.id).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [c.id for c, _ in rows]
    summary = _finding_summary(s, ids)
    out = []
    for claim, outcome in rows:
        fs = claim.fields or {}
        out.append({"claim_id": claim.id, "score": claim.score, "status": claim.status, "owner": claim.owner,
                    "plate": claim.plate, "vin": claim.vin, "policy_id": claim.policy_id,
                    "loss_type": fs.get("loss_type"), "report_time": fs.get("report_time"),
                    "created_at": claim.created_at, "outcome": outcome,
                    "severity_counts": summary.get(claim.id, {}).get("counts", {}),
                    "top_codes": summary.get(claim.id, {}).get("codes", [])})
    nxt = encode_cursor(rows[-1][0].score, rows[-1][0].id) if more and rows else None
    return QueuePage(claims=out, next_cursor=nxt, total=total)


def _finding_summary(s: Session, claim_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per claim: finding counts by severity label and its most severe codes (for the queue rows)."""
    if not claim_ids:
        return {}
    rows = s.execute(select(FindingRow.claim_id, FindingRow.severity, FindingRow.code, func.count())
                     .where(FindingRow.claim_id.in_(claim_ids))
                     .group_by(FindingRow.claim_id, FindingRow.severity, FindingRow.code)).all()
    labels = {v: k for k, v in SEVERITIES.items()}
    out: dict[str, dict[str, Any]] = {}
    for claim_id, sev, code, n in sorted(rows, key=lambda r: (-r[1], r[2])):
        entry = out.setdefault(claim_id, {"counts": {}, "codes": []})
        entry["counts"][labels[sev]] = entry["counts"].get(labels[sev], 0) + int(n)
        if sev > 0 and len(entry["codes"]) < 3:
            entry["codes"].append(code)
    return out


def facet_counts(s: Session, principal: Principal, f: QueueFilters) -> dict[str, dict[str, int]]:
    """How many claims each filter value would give, the other active filters applied (so the numbers next
    to each option are what clicking it yields)."""
    out: dict[str, dict[str, int]] = {}
    for facet, col in (("severity", FindingRow.severity), ("check", FindingRow.check), ("code", FindingRow.code)):
        claims_q = _filtered(_scope(select(Claim.id), principal), f, skip=facet)
        counted = select(col, func.count(func.distinct(FindingRow.claim_id)))
        if claims_q.whereclause is not None:  # else every claim counts: no subquery (findings.claim_id is a FK)
            counted = counted.where(FindingRow.claim_id.in_(select(claims_q.subquery().c.id)))
        rows = s.execute(counted.group_by(col)).all()
        if facet == "severity":
            labels = {v: k for k, v in SEVERITIES.items()}
            out[facet] = {labels[int(k)]: int(n) for k, n in rows if int(k) in labels}
        else:
            out[facet] = {str(k): int(n) for k, n in sorted(rows)}
    if not (f.status or f.decision or f.adjuster):
        out.update(_claim_facets_at_once(s, principal, f))  # the usual case: one query, not three
        return out
    st = _filtered(_scope(select(Claim.status, func.count()), principal), f, skip="status")
    out["status"] = {k: int(n) for k, n in s.execute(st.group_by(Claim.status)).all()}
    dq = _filtered(_scope(select(ClaimOutcome.outcome, func.count()), principal), f, skip="decision")
    dq = dq.select_from(Claim).outerjoin(ClaimOutcome, ClaimOutcome.claim_id == Claim.id)
    decision = {(k or "undecided"): int(n) for k, n in s.execute(dq.group_by(ClaimOutcome.outcome)).all()}
    out["decision"] = decision
    if principal.can_read_all():
        aq = _filtered(select(Claim.owner, func.count()), f, skip="adjuster")
        out["adjuster"] = {k: int(n) for k, n in s.execute(aq.group_by(Claim.owner)).all()}
    return out


def _claim_facets_at_once(s: Session, principal: Principal, f: QueueFilters) -> dict[str, dict[str, int]]:
    """Status, decision and adjuster counts from one query grouped by all three: valid when none of the three
    is filtered, because then each facet's query (which skips only its own filter) has the same conditions."""
    q = _filtered(_scope(select(Claim.status, ClaimOutcome.outcome, Claim.owner, func.count()), principal), f)
    q = q.select_from(Claim).outerjoin(ClaimOutcome, ClaimOutcome.claim_id == Claim.id)
    out: dict[str, dict[str, int]] = {"status": {}, "decision": {}, "adjuster": {}}
    for status, outcome, owner, n in s.execute(q.group_by(Claim.status, ClaimOutcome.outcome, Claim.owner)):
        for facet, value in (("status", status), ("decision", outcome or "undecided"), ("adjuster", owner)):
            out[facet][value] = out[facet].get(value, 0) + int(n)
    if not principal.can_read_all():
        del out["adjuster"]
    return out
