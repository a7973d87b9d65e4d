"""Claims: create/update, read, submit for analysis, status, reports."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel
from sqlalchemy import func, select

from claimlens.api.deps import AuditDep, PrincipalDep, RuntimeDep
from claimlens.api.errors import ApiError
from claimlens.core import layout
from claimlens.core.audit import AuditContext, record
from claimlens.core.auth import Principal
from claimlens.core.claims import delete_claim, erased_claim_sweep_delay, submit_claim, upsert_claim
from claimlens.core.db import session_scope
from claimlens.core.decisions import merge_into_report
from claimlens.core.models import Claim, Photo
from claimlens.core.schemas import ClaimFields, ClaimUpdate, validate_claim_id
from claimlens.core.storage import ObjectNotFound
from claimlens.core.webhooks import WebhookNotAllowed, check_webhook_url

router = APIRouter(prefix="/claims", tags=["claims"])
log = logging.getLogger("claimlens.api")


class ClaimPublic(BaseModel):
    claim_id: str
    status: str
    revision: int
    report_revision: int | None
    score: int | None
    fields: dict[str, Any]
    photos: dict[str, int]
    created_at: datetime
    updated_at: datetime


def checked_claim_id(claim_id: str) -> str:
    try:
        return validate_claim_id(claim_id)
    except ValueError as exc:
        raise ApiError(422, "invalid_claim_id", str(exc)) from exc


def checked_webhook_url(url: str | None, rt: Any) -> str | None:
    """The webhook URL if it may receive webhooks (public address, or allow-listed host; https in
    production); 422 ``webhook_url_not_allowed`` otherwise. The worker checks again at delivery."""
    if url is None:
        return None
    try:
        check_webhook_url(url, rt.settings)
    except WebhookNotAllowed as exc:
        raise ApiError(422, "webhook_url_not_allowed", str(exc)) from exc
    return url


def load_claim(s: Any, principal: Principal, claim_id: str, *, write: bool = False) -> Claim:
    """The claim if this principal may see it (adjusters: their own only); 404 otherwise, so ids of other
    insurers' claims are not revealed."""
    claim = s.get(Claim, checked_claim_id(claim_id))
    if claim is None or not (principal.can_read_all() or claim.owner == principal.name):
        raise ApiError(404, "not_found", f"claim {claim_id} not found")
    if write and not principal.can_write():
        raise ApiError(403, "forbidden", f"role {principal.role} cannot modify claims")
    return claim


def _public(s: Any, claim: Claim) -> ClaimPublic:
    counts = dict(s.execute(select(Photo.status, func.count()).where(Photo.claim_id == claim.id)
                            .group_by(Photo.status)).all())
    return ClaimPublic(claim_id=claim.id, status=claim.status, revision=claim.revision,
                       report_revision=claim.report_revision, score=claim.score, fields=claim.fields,
                       photos={k: int(v) for k, v in counts.items()}, created_at=claim.created_at,
                       updated_at=claim.updated_at)


@router.put("/{claim_id}", response_model=ClaimPublic)
def put_claim(claim_id: str, body: ClaimUpdate, principal: PrincipalDep, rt: RuntimeDep,
              response: Response) -> ClaimPublic:
    """Create the claim, or update the fields given in the body (fields left out keep their values)."""
    if not principal.can_write():
        raise ApiError(403, "forbidden", f"role {principal.role} cannot create or modify claims")
    claim_id = checked_claim_id(claim_id)
    sent = body.model_dump(exclude_unset=True, mode="json")
    webhook = checked_webhook_url(sent.pop("webhook_url", None), rt)
    with session_scope(rt.db_url) as s:
        existing = s.get(Claim, claim_id)
        if existing is not None:
            load_claim(s, principal, claim_id, write=True)
            merged = ClaimFields.model_validate({**existing.fields, **sent, "claim_id": claim_id})
            claim, created = upsert_claim(s, merged, owner=principal.name, webhook_url=webhook,
                                          partial={k: merged.record()[k] for k in sent})
        else:
            fields = ClaimFields.model_validate({**sent, "claim_id": claim_id})
            claim, created = upsert_claim(s, fields, owner=principal.name, webhook_url=webhook)
        public = _public(s, claim)
    _write_claim_record(rt, claim_id, public.fields)
    response.status_code = 201 if created else 200
    return public


def _write_claim_record(rt: Any, claim_id: str, fields: dict[str, Any]) -> None:
    """The claim record next to its photos in the bucket (the DB stays the source of truth)."""
    rt.store.put(layout.claim_record_key(claim_id), json.dumps(fields, ensure_ascii=False, indent=1).encode(),
                 "application/json")


@router.delete("/{claim_id}", status_code=204)
def erase_claim(claim_id: str, principal: PrincipalDep, rt: RuntimeDep, audit: AuditDep) -> Response:
    """Admin only: erase the claim (its objects, photos, findings, index entries, links, decisions).
    A deletion interrupted by an outage is finished by repeating the call; an unknown (or already
    erased) claim answers 404."""
    if principal.role != "admin":
        raise ApiError(403, "forbidden", "only admins delete claims")
    claim_id = checked_claim_id(claim_id)
    if not delete_claim(rt, claim_id, on_erased=lambda s: record(s, audit, "claim_deleted", claim_id=claim_id)):
        raise ApiError(404, "not_found", f"claim {claim_id} not found")
    log.info("claim %s deleted by %s", claim_id, principal.name)
    _schedule_sweep(rt, claim_id)
    return Response(status_code=204)


def _schedule_sweep(rt: Any, claim_id: str) -> None:
    """Sweep the erased claim's prefix once more when nothing can still write there (a running photo task,
    a presigned PUT URL already handed out). The erasure itself is done: a broker outage only logs."""
    from kombu.exceptions import OperationalError as BrokerError

    from claimlens.workers.tasks import sweep_erased_claim_task

    try:
        sweep_erased_claim_task.apply_async(args=[claim_id], countdown=erased_claim_sweep_delay(rt))
    except BrokerError:
        log.warning("claim %s erased; the late sweep could not be queued (broker down)", claim_id)


@router.get("/{claim_id}", response_model=ClaimPublic)
def read_claim(claim_id: str, principal: PrincipalDep, rt: RuntimeDep, audit: AuditDep) -> ClaimPublic:
    """The claim record with its analysis status and photo counts."""
    with session_scope(rt.db_url) as s:
        claim = load_claim(s, principal, claim_id)
        record(s, audit, "read_claim", claim_id=claim.id)
        return _public(s, claim)


class SubmitBody(BaseModel):
    webhook_url: str | None = None


class SubmitPublic(BaseModel):
    claim_id: str
    revision: int
    status: str
    photos: int


@router.post("/{claim_id}/submit", response_model=SubmitPublic, status_code=202)
def submit(claim_id: str, principal: PrincipalDep, rt: RuntimeDep,
           body: Annotated[SubmitBody | None, Body()] = None) -> SubmitPublic:
    """Start (or restart) the claim analysis: every photo, then the claim report; poll /status."""
    from claimlens.workers.tasks import dispatch_claim

    with session_scope(rt.db_url) as s:
        load_claim(s, principal, claim_id, write=True)
    webhook = checked_webhook_url(body.webhook_url if body else None, rt)
    revision, photo_ids = submit_claim(rt, claim_id, webhook_url=webhook)
    dispatch_claim(claim_id, revision, photo_ids)
    return SubmitPublic(claim_id=claim_id, revision=revision, status="analysing", photos=len(photo_ids))


class StatusPublic(BaseModel):
    claim_id: str
    status: str
    revision: int
    report_revision: int | None
    final: bool
    score: int | None
    photos: dict[str, int]


@router.get("/{claim_id}/status", response_model=StatusPublic)
def read_status(claim_id: str, principal: PrincipalDep, rt: RuntimeDep) -> StatusPublic:
    """Cheap polling endpoint: final is true once the report of the latest revision is stored."""
    with session_scope(rt.db_url) as s:
        claim = load_claim(s, principal, claim_id)
        pub = _public(s, claim)
    return StatusPublic(claim_id=claim.id, status=claim.status, revision=claim.revision,
                        report_revision=claim.report_revision,
                        final=claim.status == "final" and claim.report_revision == claim.revision,
                        score=claim.score, photos=pub.photos)


def _report_bytes(rt: Any, principal: Principal, claim_id: str, key: str, audit: AuditContext) -> bytes:
    with session_scope(rt.db_url) as s:
        load_claim(s, principal, claim_id)
    try:
        data = rt.store.get(key)
    except ObjectNotFound as exc:
        raise ApiError(404, "no_report", "no report yet: submit the claim and wait for status final") from exc
    with session_scope(rt.db_url) as s:
        record(s, audit, "read_report", claim_id=checked_claim_id(claim_id), target=key)
    return data


@router.get("/{claim_id}/report")
def read_report(claim_id: str, principal: PrincipalDep, rt: RuntimeDep, audit: AuditDep) -> Response:
    """The latest final claim report (JSON, schema_version 1.0), with the investigators' decisions so far
    (``decisions``: the current one per finding key and the claim outcome, and the full history)."""
    claim_id = checked_claim_id(claim_id)
    report = json.loads(_report_bytes(rt, principal, claim_id, layout.report_json_key(claim_id), audit))
    with session_scope(rt.db_url) as s:
        merge_into_report(s, report)
    return Response(json.dumps(report, ensure_ascii=False, default=str), media_type="application/json")


@router.get("/{claim_id}/report.html")
def read_report_html(claim_id: str, principal: PrincipalDep, rt: RuntimeDep, audit: AuditDep) -> Response:
    """The investigator's self-contained HTML report."""
    data = _report_bytes(rt, principal, claim_id, layout.report_html_key(checked_claim_id(claim_id)), audit)
    return Response(data, media_type="text/html; charset=utf-8")
