"""The audit trail: who read which claim, report or photo, who decided what, who changed keys.

Insurers' security rules ask for every read of claim data, not only for changes, so the API routes and the
workbench pages both call :func:`record` with the same context (principal, client address, request id).
Rows are only ever inserted; the migration makes the database refuse UPDATE and DELETE on the table.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claimlens.core.models import AuditEvent

ACTIONS = ("read_claim", "read_report", "read_photo", "read_evidence", "read_links", "list_claims",
           "decision", "key_created", "key_revoked", "key_rotated", "claim_deleted", "sign_in", "sign_out",
           "sign_in_failed")


@dataclass(frozen=True)
class AuditContext:
    """Who is asking and through which request; built once per request by the API or the workbench."""

    principal: str
    role: str | None
    client_addr: str | None
    request_id: str | None
    channel: str = "api"  # api | ui


def record(s: Session, ctx: AuditContext, action: str, *, claim_id: str | None = None,
           target: str | None = None, **details: Any) -> None:
    """Append one event (in the caller's transaction, so an event exists exactly when the act committed)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    s.add(AuditEvent(principal=ctx.principal, role=ctx.role, action=action, claim_id=claim_id,
                     target=(target or None) and target[:512], client_addr=ctx.client_addr,
                     request_id=ctx.request_id, channel=ctx.channel, details=details))


@dataclass(frozen=True)
class AuditFilters:
    principal: str | None = None
    action: str | None = None
    claim_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(str(event_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc


def query_events(s: Session, f: AuditFilters, *, cursor: str | None = None,
                 limit: int = 50) -> tuple[list[AuditEvent], str | None]:
    """Newest first; returns the page and the cursor of the next page (None at the end)."""
    q = select(AuditEvent).order_by(AuditEvent.id.desc())
    if f.principal:
        q = q.where(AuditEvent.principal == f.principal)
    if f.action:
        q = q.where(AuditEvent.action == f.action)
    if f.claim_id:
        q = q.where(AuditEvent.claim_id == f.claim_id)
    if f.since:
        q = q.where(AuditEvent.at >= f.since)
    if f.until:
        q = q.where(AuditEvent.at < f.until)
    after = decode_cursor(cursor)
    if after is not None:
        q = q.where(AuditEvent.id < after)
    rows = list(s.scalars(q.limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more and rows else None


def event_json(e: AuditEvent) -> dict[str, Any]:
    return {"id": e.id, "at": e.at.isoformat() if e.at else None, "principal": e.principal, "role": e.role,
            "action": e.action, "claim_id": e.claim_id, "target": e.target, "client_addr": e.client_addr,
            "request_id": e.request_id, "channel": e.channel, "details": e.details or {}}
