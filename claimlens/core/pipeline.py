"""The analysis pipeline, independent of how it is run.

``analyse_photo`` (per photo) and ``assess_claim`` (per claim) are plain functions over a :class:`Runtime`
(settings, object store, database URL, checks). Celery tasks (``claimlens.workers.tasks``) and the embedded
``claimlens scan`` call exactly these, so both modes run the same check code.

Both functions are idempotent: they *replace* the rows and objects they own, so a task that runs twice
(``acks_late`` redelivery after a crash) leaves the same state as one run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import InterfaceError, OperationalError, PendingRollbackError
from sqlalchemy.orm import Session

from claimlens import __version__
from claimlens.checks.base import (
    Check,
    ClaimContext,
    Finding,
    PhotoAnalysis,
    PhotoInfo,
    PhotoResult,
    Severity,
)
from claimlens.checks.registry import all_checks, check_versions, pipeline_signature
from claimlens.config import Settings
from claimlens.core import layout
from claimlens.core.db import session_scope
from claimlens.core.findings import group_findings
from claimlens.core.index import SqlCrossClaimIndex, replace_photo_index
from claimlens.core.milvus_index import IndexUnavailable, MilvusCodeIndex, make_code_index
from claimlens.core.models import Claim, ClaimLink, FindingRow, Photo, utcnow
from claimlens.core.storage import ObjectNotFound, ObjectStore, StorageUnavailable
from claimlens.vision.decode import decode_photo
from claimlens.vision.errors import UnreadableImageError

# Outages of a service a claim-phase check reads through (the index in the database or Milvus, artifacts in the
# store): not a broken check but a broken world. They must reach the task, which retries the whole claim phase
# on a fresh session; caught as "check.failed" they left a dead session behind (a PostgreSQL restart during the
# soak bench lost one claim's final report that way).
SERVICE_OUTAGES = (IndexUnavailable, StorageUnavailable, OperationalError, InterfaceError, PendingRollbackError)

log = logging.getLogger("claimlens.pipeline")

SCHEMA_VERSION = "1.0"
"""Of the per-photo analysis.json; the report's is claimlens.core.report.REPORT_SCHEMA_VERSION."""


class PhotosPending(RuntimeError):
    """The claim phase was asked for before every photo was analysed (transient: retry later)."""

    def __init__(self, photo_ids: list[str]) -> None:
        super().__init__(photo_ids)
        self.photo_ids = photo_ids

    def __str__(self) -> str:
        return f"{len(self.photo_ids)} photo(s) not analysed yet"


@dataclass
class Runtime:
    settings: Settings
    store: ObjectStore
    checks: tuple[Check, ...] = field(default_factory=all_checks)

    @property
    def db_url(self) -> str:
        return self.settings.effective_database_url

    @property
    def signature(self) -> str:
        return pipeline_signature(self.checks)

    @cached_property
    def code_index(self) -> MilvusCodeIndex | None:
        """The Milvus code index when ``index_engine`` is milvus (one client per process, made on first use)."""
        return make_code_index(self.settings)


def _photo_info(photo: Photo) -> PhotoInfo:
    return PhotoInfo(photo_id=photo.id, claim_id=photo.claim_id, stage=photo.stage, role=photo.role,
                     sha256=photo.sha256 or "", size_bytes=photo.size_bytes or 0, filename=photo.filename,
                     uploaded_at=photo.uploaded_at, regions=list(photo.regions or []))


def _finding_row(f: Finding, *, claim_id: str, phase: str, check: Check,
                 evidence_keys: dict[str, str]) -> FindingRow:
    return FindingRow(claim_id=claim_id, photo_id=f.photo_id, phase=phase, check=check.name,
                      check_version=check.version, code=f.code, severity=int(f.severity), message=f.message,
                      evidence=f.evidence, evidence_keys=evidence_keys)


def _store_evidence(rt: Runtime, f: Finding, key_for: Any) -> dict[str, str]:
    keys: dict[str, str] = {}
    for name, data in f.evidence_images.items():
        key = key_for(name)
        rt.store.put(key, data, "image/png" if name.endswith(".png") else "image/jpeg")
        keys[name] = key
    return keys


def analyse_photo(rt: Runtime, photo_id: str) -> str:
    """Run every check's per-photo phase on one stored photo. Returns the photo's resulting status."""
    with session_scope(rt.db_url) as s:
        photo = s.get(Photo, photo_id)
        if photo is None:
            return "missing"
        if photo.status == "awaiting_upload":
            return photo.status
        if photo.analysis_version == rt.signature and photo.status in ("analysed", "error"):
            return photo.status  # already done by an earlier (possibly redelivered) run
        info = _photo_info(photo)
        object_key = photo.object_key
        recorded_sha = photo.sha256

    data = rt.store.get(object_key)  # StorageUnavailable propagates: the task retries
    sha = hashlib.sha256(data).hexdigest()
    size = len(data)
    if recorded_sha and sha != recorded_sha:
        return _record_photo_error(rt, photo_id, "checksum_mismatch",
                                   f"stored object sha256 {sha[:12]} differs from the upload's {recorded_sha[:12]}")
    try:
        decoded = decode_photo(data, max_pixels=rt.settings.max_pixels)
    except UnreadableImageError as exc:
        return _record_photo_error(rt, photo_id, exc.reason, exc.message, sha=sha, size=size)
    del data  # keep one full-resolution copy only: the decoded pixels

    info = PhotoInfo(**{**info.__dict__, "sha256": sha, "size_bytes": size})
    results: dict[str, PhotoResult] = {}
    for check in rt.checks:
        try:
            results[check.name] = check.analyse_photo(decoded, info)
        except Exception as exc:  # one broken check must not hide the others' results
            log.exception("check %s failed on photo %s", check.name, photo_id)
            results[check.name] = PhotoResult(findings=[Finding(
                code="check.failed", severity=Severity.INFO, photo_id=photo_id,
                message=f"The {check.name} check could not run on this photo ({type(exc).__name__}).",
                evidence={"check": check.name, "error": str(exc)[:500]})])

    claim_id = info.claim_id
    rt.store.put(layout.thumbnail_key(claim_id, photo_id), decoded.thumbnail_jpeg(), "image/jpeg")
    analysis = {name: r.data for name, r in results.items()}
    rows: list[FindingRow] = []
    for check in rt.checks:
        result = results[check.name]
        for art_name, blob in result.artifacts.items():
            rt.store.put(layout.artifact_key(claim_id, photo_id, check.name, art_name), blob)
        for f in result.findings:
            f = Finding(**{**f.__dict__, "photo_id": f.photo_id or photo_id})
            keys = _store_evidence(rt, f, lambda n: layout.artifact_key(claim_id, photo_id, "evidence", n))
            rows.append(_finding_row(f, claim_id=claim_id, phase="photo", check=check, evidence_keys=keys))
    doc = {"schema_version": SCHEMA_VERSION, "photo_id": photo_id, "claim_id": claim_id,
           "producer": _producer(rt), "sha256": sha, "width": decoded.width, "height": decoded.height,
           "format": decoded.format, "checks": analysis,
           "findings": [_finding_json(r) for r in rows]}
    rt.store.put(layout.analysis_key(claim_id, photo_id), _json_bytes(doc), "application/json")

    index_keys: dict[str, list[str]] = {}
    codes: dict[str, list[int]] = {}
    vectors: dict[str, list[float]] = {}
    for r in results.values():
        for k, v in r.index_keys.items():
            index_keys.setdefault(k, []).extend(v)
        for k, c in r.codes.items():
            codes.setdefault(k, []).extend(c)
        vectors.update(r.vectors)

    with session_scope(rt.db_url) as s:
        photo = s.get(Photo, photo_id)
        if photo is None:
            return "missing"
        s.execute(delete(FindingRow).where(FindingRow.photo_id == photo_id, FindingRow.phase == "photo"))
        s.add_all(rows)
        replace_photo_index(s, photo, index_keys, codes, rt.code_index, vectors)
        photo.sha256 = sha
        photo.size_bytes = size
        photo.analysis = analysis
        photo.analysis_version = rt.signature
        photo.status = "analysed"
        photo.error = None
        photo.analysed_at = utcnow()
    return "analysed"


def record_photo_failure(rt: Runtime, photo_id: str, exc: Exception) -> str:
    """An unexpected failure of the analysis itself (not of the photo) recorded as a per-photo error."""
    return _record_photo_error(rt, photo_id, "analysis_failed",
                               f"internal error {type(exc).__name__}; re-submit the claim to retry",
                               code="photo.analysis_failed", severity=Severity.INFO, status="failed")


def _record_photo_error(rt: Runtime, photo_id: str, reason: str, message: str, *, sha: str | None = None,
                        size: int | None = None, code: str = "photo.unreadable",
                        severity: Severity = Severity.LOW, status: str = "error") -> str:
    """``status`` 'error': the photo itself is unreadable (final for this pipeline version); 'failed': the
    analysis broke (the claim report still completes, and the next submit analyses the photo again)."""
    """An unreadable photo becomes a recorded per-photo finding, never a crashed task."""
    with session_scope(rt.db_url) as s:
        photo = s.get(Photo, photo_id)
        if photo is None:
            return "missing"
        s.execute(delete(FindingRow).where(FindingRow.photo_id == photo_id, FindingRow.phase == "photo"))
        replace_photo_index(s, photo, {}, {}, rt.code_index)
        s.add(FindingRow(claim_id=photo.claim_id, photo_id=photo_id, phase="photo", check="pipeline",
                         check_version="1", code=code, severity=int(severity),
                         message=f"The photo could not be analysed: {message}",
                         evidence={"reason": reason, "detail": message}, evidence_keys={}))
        if sha and not photo.sha256:
            photo.sha256 = sha
        if size is not None:
            photo.size_bytes = size
        photo.status = status
        photo.error = f"{reason}: {message}"
        photo.analysis = None
        photo.analysis_version = rt.signature
        photo.analysed_at = utcnow()
    return status


def _producer(rt: Runtime) -> dict[str, Any]:
    return {"claimlens": __version__, "pipeline": rt.signature, "checks": check_versions(rt.checks)}


def _json_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, indent=1, default=str).encode()


def _finding_json(r: FindingRow) -> dict[str, Any]:
    return {"code": r.code, "severity": Severity(r.severity).label, "check": r.check,
            "check_version": r.check_version, "photo_id": r.photo_id, "message": r.message,
            "evidence": r.evidence, "evidence_images": r.evidence_keys}


def pending_photos(s: Session, claim_id: str, signature: str) -> list[str]:
    rows = s.execute(select(Photo.id, Photo.status, Photo.analysis_version)
                     .where(Photo.claim_id == claim_id)).all()
    return [r.id for r in rows
            if r.status == "stored" or (r.status in ("analysed", "error") and r.analysis_version != signature)]


def assess_claim(rt: Runtime, claim_id: str, revision: int) -> str:
    """Run every check's claim phase and write the claim report. Returns 'final' or 'superseded'."""
    from claimlens.core.report import build_report, render_html

    with session_scope(rt.db_url) as s:
        claim = s.get(Claim, claim_id)
        if claim is None:
            return "missing"
        if claim.revision != revision:
            return "superseded"  # a newer submit owns the report
        pending = pending_photos(s, claim_id, rt.signature)
        if pending:
            raise PhotosPending(pending)
        photos = s.scalars(select(Photo).where(Photo.claim_id == claim_id).order_by(Photo.created_at,
                                                                                      Photo.id)).all()
        analyses = [PhotoAnalysis(info=_photo_info(p), data=p.analysis or {}, error=p.error)
                    for p in photos if p.status in ("analysed", "error", "failed")]
        ctx = ClaimContext(claim=dict(claim.fields), photos=analyses, index=SqlCrossClaimIndex(s, rt.code_index),
                           load_artifact=lambda c, p, chk, n: _load_optional(rt, layout.artifact_key(c, p, chk, n)),
                           load_thumbnail=lambda c, p: _load_optional(rt, layout.thumbnail_key(c, p)))
        new_rows: list[FindingRow] = []
        for check in rt.checks:
            try:
                found = check.assess_claim(ctx)
            except SERVICE_OUTAGES:
                raise  # the claim task retries
            except Exception as exc:
                log.exception("claim phase of %s failed on claim %s", check.name, claim_id)
                found = [Finding(code="check.failed", severity=Severity.INFO,
                                 message=f"The {check.name} check could not assess this claim "
                                         f"({type(exc).__name__}).",
                                 evidence={"check": check.name, "error": str(exc)[:500]})]
            for f in found:
                keys = _store_evidence(rt, f, lambda n: layout.evidence_key(claim_id, revision, n))
                new_rows.append(_finding_row(f, claim_id=claim_id, phase="claim", check=check,
                                             evidence_keys=keys))
        photo_rows = s.scalars(select(FindingRow).where(FindingRow.claim_id == claim_id,
                                                        FindingRow.phase == "photo")).all()
        all_rows = list(photo_rows) + new_rows
        _replace_links(s, claim_id, new_rows)
        group = claim_group(s, claim_id)
        grouped = group_findings([_finding_json(r) for r in all_rows], claim_id)  # one group per fact
        score = grouped.score
        report = build_report(claim=claim, photos=photos, grouped=grouped, revision=revision,
                              producer=_producer(rt), group=group)
        html = render_html(report, load=lambda key: _load_optional(rt, key))
        # Objects first, then the DB commit that declares the report final. Each PUT is atomic, and the
        # JSON goes last so a reader never sees a JSON report that points at missing evidence.
        rt.store.put(layout.report_html_key(claim_id), html.encode(), "text/html; charset=utf-8")
        rt.store.put(layout.report_json_key(claim_id), _json_bytes(report), "application/json")
        s.execute(delete(FindingRow).where(FindingRow.claim_id == claim_id, FindingRow.phase == "claim"))
        s.add_all(new_rows)
        s.refresh(claim)
        if claim.revision != revision:
            return "superseded"
        claim.status = "final"
        claim.report_revision = revision
        claim.score = score
    return "final"


def _load_optional(rt: Runtime, key: str) -> bytes | None:
    try:
        return rt.store.get(key)
    except ObjectNotFound:
        return None


def _replace_links(s: Session, claim_id: str, rows: list[FindingRow]) -> None:
    """Claim-phase findings that name another claim (``evidence.linked_claim_id``) become claim links."""
    s.execute(delete(ClaimLink).where(ClaimLink.source_claim == claim_id))
    seen: set[tuple[str, str, str]] = set()
    for r in rows:
        other = (r.evidence or {}).get("linked_claim_id")
        if not other or other == claim_id:
            continue
        a, b = sorted((claim_id, str(other)))
        if (a, b, r.code) not in seen:
            seen.add((a, b, r.code))
            s.add(ClaimLink(claim_a=a, claim_b=b, reason=r.code, source_claim=claim_id))
    s.flush()


def claim_group(s: Session, claim_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """The claims connected to this one through links (breadth-first, bounded), with the reasons."""
    seen = {claim_id}
    frontier = [claim_id]
    edges: list[dict[str, Any]] = []
    while frontier and len(seen) < limit:
        rows = s.execute(select(ClaimLink).where(ClaimLink.claim_a.in_(frontier) | ClaimLink.claim_b.in_(frontier))).scalars().all()
        frontier = []
        for link in rows:
            edge = {"claim_a": link.claim_a, "claim_b": link.claim_b, "reason": link.reason}
            if edge not in edges:
                edges.append(edge)
            for c in (link.claim_a, link.claim_b):
                if c not in seen:
                    seen.add(c)
                    frontier.append(c)
    return edges
