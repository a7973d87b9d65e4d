"""Database tables: claims, photos, findings, the exact-key cross-claim index and API keys.

The Hamming-code index lives in :mod:`claimlens.core.hamming_index`. Tables are created by Alembic
(``claimlens/migrations``); these classes are the single description of the schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from claimlens.core.db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


class Claim(Base):
    __tablename__ = "claims"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)  # API key name that created it
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the claim record (ClaimFields)
    policy_id: Mapped[str | None] = mapped_column(String(64), index=True)
    plate: Mapped[str | None] = mapped_column(String(32), index=True)
    vin: Mapped[str | None] = mapped_column(String(32), index=True)
    # open: accepting photos; analysing: a report revision is being built; final: report of `revision` done
    status: Mapped[str] = mapped_column(String(16), default="open")
    revision: Mapped[int] = mapped_column(Integer, default=0)  # bumped by every submit
    report_revision: Mapped[int | None] = mapped_column(Integer)  # revision of the stored report
    score: Mapped[int | None] = mapped_column(Integer)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Photo(Base):
    __tablename__ = "photos"
    __table_args__ = (UniqueConstraint("claim_id", "sha256"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    role: Mapped[str | None] = mapped_column(String(32))
    regions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(100))
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)  # None until a presigned upload commits
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    object_key: Mapped[str] = mapped_column(String(512))
    # awaiting_upload (presigned URL issued) -> stored -> analysed | error (unreadable) | failed (internal)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # check name -> per-photo data
    analysis_version: Mapped[str | None] = mapped_column(String(64))  # pipeline signature that produced it
    upload_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    uploaded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    analysed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FindingRow(Base):
    __tablename__ = "findings"
    __table_args__ = (Index("ix_findings_claim_phase", "claim_id", "phase"),
                      # the queue's finding filters and counts per value (migration 0005_ui)
                      Index("ix_findings_severity_claim", "severity", "claim_id"),
                      Index("ix_findings_code_claim", "code", "claim_id"),
                      Index("ix_findings_check_claim", "check", "claim_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"))
    photo_id: Mapped[str | None] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    phase: Mapped[str] = mapped_column(String(8))  # photo | claim
    check: Mapped[str] = mapped_column(String(64))
    check_version: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(96))
    severity: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    evidence_keys: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # name -> object key
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PhotoKey(Base):
    """Exact keys of the cross-claim index (sha256, pixel hash, later VIN/plate) -> photo."""

    __tablename__ = "photo_keys"
    __table_args__ = (
        UniqueConstraint("photo_id", "kind", "value"),
        Index("ix_photo_keys_kind_value", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    claim_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(128))


class ApiKey(Base):
    """API keys are stored as sha256 of the key: keys are 256-bit random tokens, so a fast hash is enough
    (no dictionary to attack) and lookups stay O(1)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # adjuster | investigator | admin
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # None: never
    # written at most once a minute per key (claimlens.core.auth.LAST_USED_RESOLUTION)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # rotation: the replaced key keeps working until previous_expires_at (the grace period), then never again
    previous_key_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    previous_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ClaimLink(Base):
    """An edge between two claims (shared photo, later shared VIN/plate): claim groups (串并) are the
    connected components of these edges. Stored with claim_a < claim_b so each edge exists once."""

    __tablename__ = "claim_links"
    __table_args__ = (UniqueConstraint("claim_a", "claim_b", "reason", "source_claim"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    claim_a: Mapped[str] = mapped_column(String(64), index=True)
    claim_b: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(96))  # the finding code that created it
    source_claim: Mapped[str] = mapped_column(String(64), index=True)  # whose assessment wrote it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Decision(Base):
    """An investigator's decision, never edited: the latest row per (claim, finding_key) is the current one.

    ``kind`` 'finding': confirm / dismiss / escalate one finding (code and severity copied in, because findings
    are rebuilt on each report revision while decisions must keep counting in the precision table);
    'outcome': the claim's outcome (cleared, referred_siu, fraud_confirmed), finding_key ''.
    """

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_claim_key", "claim_id", "finding_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    claim_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # finding | outcome
    finding_key: Mapped[str] = mapped_column(String(64))  # '' for outcomes
    code: Mapped[str | None] = mapped_column(String(96))
    check: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[int | None] = mapped_column(Integer)
    photo_id: Mapped[str | None] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    principal: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ClaimOutcome(Base):
    """The current outcome of a claim (the latest 'outcome' decision), kept as a row so the queue can filter
    on the decision state with one indexed lookup; the history stays in ``decisions``."""

    __tablename__ = "claim_outcomes"

    claim_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), index=True)
    principal: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEvent(Base):
    """Append-only audit trail (who read which claim, report or photo; decisions; key changes). The migration
    adds triggers that refuse UPDATE and DELETE on this table."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_claim_at", "claim_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    principal: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32), index=True)
    claim_id: Mapped[str | None] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(512))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8))  # api | ui
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class UiSession(Base):
    """A workbench sign-in: the cookie holds a random token, the table its sha256 (like API keys), the CSRF
    token of the session, and the times that decide idle and absolute expiry. Revoked on sign-out or when the
    API key it came from is revoked."""

    __tablename__ = "ui_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    principal: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    api_key_id: Mapped[int | None] = mapped_column(Integer)  # None for the embedded local user
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
