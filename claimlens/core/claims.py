"""Claim and photo lifecycle shared by the API and the embedded scan: create/update, store an upload,
presigned upload + commit, submit for analysis.

Order of writes on upload: object first, then the DB row, then the analysis is queued. If the DB write
fails the object is deleted again, so nothing is half-stored; if queueing fails the photo is still safely
recorded as ``stored`` and the next submit (which analyses every not-yet-analysed photo) picks it up.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from claimlens.core import layout
from claimlens.core.db import session_scope
from claimlens.core.models import Claim, Photo, utcnow
from claimlens.core.pipeline import Runtime
from claimlens.core.schemas import ClaimFields, PhotoUploadMeta
from claimlens.vision.decode import sniff_image

log = logging.getLogger(__name__)


class ClaimError(Exception):
    """A request the claim lifecycle refuses; ``status`` maps to the HTTP status code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message


def upsert_claim(s: Session, fields: ClaimFields, *, owner: str, webhook_url: str | None = None,
                 partial: dict[str, Any] | None = None) -> tuple[Claim, bool]:
    """Create the claim, or update the given fields of an existing one. Returns (claim, created)."""
    record = fields.record()
    claim = s.get(Claim, fields.claim_id)
    created = claim is None
    if claim is None:
        claim = Claim(id=fields.claim_id, owner=owner, fields=record, status="open", revision=0)
        s.add(claim)
    else:
        updates = partial if partial is not None else record
        claim.fields = {**claim.fields, **updates}
    claim.policy_id = claim.fields.get("policy_id")
    claim.plate = claim.fields.get("plate")
    claim.vin = claim.fields.get("vin")
    if webhook_url is not None:
        claim.webhook_url = webhook_url
    claim.updated_at = utcnow()
    try:
        s.flush()
    except IntegrityError as exc:  # concurrent create of the same id
        raise ClaimError(409, "conflict", f"claim {fields.claim_id} was created concurrently; retry") from exc
    return claim, created


@dataclass(frozen=True)
class StoredPhoto:
    photo_id: str
    sha256: str | None
    status: str
    created: bool


def store_photo(rt: Runtime, claim_id: str, data: bytes, *, filename: str | None, content_type: str | None,
                meta: PhotoUploadMeta) -> StoredPhoto:
    """Store an uploaded photo (idempotent: the same bytes in the same claim return the existing photo)."""
    if len(data) > rt.settings.max_upload_bytes:
        raise ClaimError(413, "too_large", f"upload of {len(data)} bytes exceeds {rt.settings.max_upload_bytes}")
    _sniff_or_raise(rt, data)
    sha = hashlib.sha256(data).hexdigest()
    with session_scope(rt.db_url) as s:
        if s.get(Claim, claim_id) is None:
            raise ClaimError(404, "not_found", f"claim {claim_id} does not exist")
        existing = s.scalars(select(Photo).where(Photo.claim_id == claim_id, Photo.sha256 == sha)).first()
        if existing is not None:
            return StoredPhoto(existing.id, sha, existing.status, created=False)
    photo_id = str(uuid.uuid4())
    key = layout.original_key(claim_id, photo_id, filename)
    rt.store.put(key, data, content_type or "application/octet-stream")
    try:
        with session_scope(rt.db_url) as s:
            s.add(Photo(id=photo_id, claim_id=claim_id, stage=meta.stage.value,
                        role=meta.role.value if meta.role else None,
                        regions=[r.model_dump() for r in meta.regions], filename=_clean_name(filename),
                        content_type=content_type, sha256=sha, size_bytes=len(data), object_key=key,
                        status="stored", uploaded_at=utcnow()))
    except IntegrityError:
        _delete_quietly(rt, key)  # the same bytes won a concurrent race: return that photo
        with session_scope(rt.db_url) as s:
            existing = s.scalars(select(Photo).where(Photo.claim_id == claim_id, Photo.sha256 == sha)).first()
            if existing is None:
                raise
            return StoredPhoto(existing.id, sha, existing.status, created=False)
    except BaseException:
        _delete_quietly(rt, key)
        raise
    return StoredPhoto(photo_id, sha, "stored", created=True)


def _clean_name(filename: str | None) -> str | None:
    if not filename:
        return None
    return filename.replace("\\", "/").rsplit("/", 1)[-1][:255] or None


def _sniff_or_raise(rt: Runtime, data: bytes) -> None:
    from claimlens.vision.errors import ImageTooLargeError, UnreadableImageError

    try:
        sniff_image(data, max_pixels=rt.settings.max_pixels)
    except ImageTooLargeError as exc:
        raise ClaimError(413, exc.reason, exc.message) from exc
    except UnreadableImageError as exc:
        status = 400 if exc.reason == "empty" else 415
        raise ClaimError(status, exc.reason, exc.message) from exc


def _delete_quietly(rt: Runtime, key: str) -> None:
    try:
        rt.store.delete(key)
    except Exception as exc:  # noqa: BLE001 - best effort: an orphan object under an unused photo id is harmless
        log.debug("could not delete %s: %s", key, type(exc).__name__)


def create_presigned_upload(rt: Runtime, claim_id: str, *, filename: str | None, content_type: str | None,
                            meta: PhotoUploadMeta) -> tuple[str, str, datetime]:
    """Reserve a photo id and return (photo_id, presigned PUT URL for exactly its key, expiry)."""
    photo_id = str(uuid.uuid4())
    key = layout.original_key(claim_id, photo_id, filename)
    expires = utcnow() + timedelta(seconds=rt.settings.presign_expiry_seconds)
    url = rt.store.presigned_put_url(key, rt.settings.presign_expiry_seconds)
    with session_scope(rt.db_url) as s:
        if s.get(Claim, claim_id) is None:
            raise ClaimError(404, "not_found", f"claim {claim_id} does not exist")
        s.add(Photo(id=photo_id, claim_id=claim_id, stage=meta.stage.value,
                    role=meta.role.value if meta.role else None, regions=[r.model_dump() for r in meta.regions],
                    filename=_clean_name(filename), content_type=content_type, object_key=key,
                    status="awaiting_upload", upload_expires_at=expires))
    return photo_id, url, expires


def commit_upload(rt: Runtime, claim_id: str, photo_id: str) -> StoredPhoto:
    """Confirm a presigned upload: check the object, record its sha256; idempotent."""
    with session_scope(rt.db_url) as s:
        photo = s.get(Photo, photo_id)
        if photo is None or photo.claim_id != claim_id:
            raise ClaimError(404, "not_found", f"photo {photo_id} not found in claim {claim_id}")
        if photo.status != "awaiting_upload":
            return StoredPhoto(photo.id, photo.sha256, photo.status, created=False)
        key = photo.object_key
    size = rt.store.size(key)
    if size is None:
        raise ClaimError(409, "not_uploaded", "no object has been uploaded to the presigned URL yet")
    if size > rt.settings.max_upload_bytes:
        _delete_quietly(rt, key)
        raise ClaimError(413, "too_large", f"upload of {size} bytes exceeds {rt.settings.max_upload_bytes}")
    data = rt.store.get(key)
    try:
        _sniff_or_raise(rt, data)
    except ClaimError:
        _delete_quietly(rt, key)
        raise
    sha = hashlib.sha256(data).hexdigest()
    with session_scope(rt.db_url) as s:
        twin = s.scalars(select(Photo).where(Photo.claim_id == claim_id, Photo.sha256 == sha,
                                             Photo.id != photo_id)).first()
        photo = s.get(Photo, photo_id)
        assert photo is not None
        if twin is not None:  # same bytes already in this claim: keep one photo
            s.delete(photo)
            result = StoredPhoto(twin.id, sha, twin.status, created=False)
        else:
            photo.sha256, photo.size_bytes, photo.status, photo.uploaded_at = sha, size, "stored", utcnow()
            result = StoredPhoto(photo_id, sha, "stored", created=True)
    if not result.created:
        _delete_quietly(rt, key)
    return result


def submit_claim(rt: Runtime, claim_id: str, *, webhook_url: str | None = None) -> tuple[int, list[str]]:
    """Start a new report revision; returns (revision, ids of the photos the claim phase will cover)."""
    with session_scope(rt.db_url) as s:
        claim = s.get(Claim, claim_id, with_for_update=True)
        if claim is None:
            raise ClaimError(404, "not_found", f"claim {claim_id} does not exist")
        photo_ids = list(s.scalars(select(Photo.id).where(Photo.claim_id == claim_id,
                                                          Photo.status != "awaiting_upload")))
        if not photo_ids:
            raise ClaimError(409, "no_photos", "the claim has no uploaded photos to analyse")
        claim.revision += 1
        claim.status = "analysing"
        if webhook_url is not None:
            claim.webhook_url = webhook_url
        return claim.revision, photo_ids


def delete_claim(rt: Runtime, claim_id: str, *, on_erased: Callable[[Session], None] | None = None) -> bool:
    """Erase a claim: its objects in the store and every row about it (photos, findings, exact and Hamming
    index entries, claim links in either direction, decisions and outcome). Returns False for an unknown claim.

    Idempotent and restartable: the claim is first marked ``deleting`` (so a retry after a crash finds it and
    finishes), then its objects go, then its rows in one transaction, then the prefix is swept once more for
    an object a worker was writing meanwhile (and once more later, :func:`sweep_erased_claim`). Other claims' reports are their own records and are not
    rewritten (an evidence image there may still show one of this claim's photos: docs/services.md). The
    append-only audit trail keeps the event of the deletion: ``on_erased`` runs in the transaction that removes
    the rows, so the audit event exists exactly when the erasure committed.
    """
    from sqlalchemy import delete, or_

    from claimlens.core.hamming_index import hamming_codes
    from claimlens.core.models import ClaimLink, ClaimOutcome, Decision, FindingRow, PhotoKey

    with session_scope(rt.db_url) as s:
        claim = s.get(Claim, claim_id, with_for_update=True)
        if claim is None:
            return False
        claim.status = "deleting"
    _delete_prefix(rt, layout.claim_prefix(claim_id))
    with session_scope(rt.db_url) as s:
        s.execute(delete(hamming_codes).where(hamming_codes.c.claim_id == claim_id))
        s.execute(delete(PhotoKey).where(PhotoKey.claim_id == claim_id))
        s.execute(delete(FindingRow).where(FindingRow.claim_id == claim_id))
        s.execute(delete(ClaimLink).where(or_(ClaimLink.claim_a == claim_id, ClaimLink.claim_b == claim_id,
                                              ClaimLink.source_claim == claim_id)))
        s.execute(delete(Decision).where(Decision.claim_id == claim_id))
        s.execute(delete(ClaimOutcome).where(ClaimOutcome.claim_id == claim_id))
        s.execute(delete(Photo).where(Photo.claim_id == claim_id))
        s.execute(delete(Claim).where(Claim.id == claim_id))
        if on_erased is not None:
            on_erased(s)
        if rt.code_index is not None:  # before the commit: Milvus down -> the erasure fails and is retried
            rt.code_index.remove_claim(claim_id)
    _delete_prefix(rt, layout.claim_prefix(claim_id))
    return True


def erased_claim_sweep_delay(rt: Runtime) -> int:
    """Seconds after an erasure by which nothing can still write under the claim: the longest photo task
    already running, and the longest-lived presigned upload URL already handed out."""
    return max(rt.settings.task_time_limit_seconds, rt.settings.presign_expiry_seconds) + 60


def sweep_erased_claim(rt: Runtime, claim_id: str) -> int:
    """Delete objects written under an erased claim after its erasure (a photo task that was running, a
    presigned PUT that arrived late). Does nothing when the claim exists (again). Returns objects removed."""
    with session_scope(rt.db_url) as s:
        if s.get(Claim, claim_id) is not None:
            return 0
    keys = rt.store.list(layout.claim_prefix(claim_id))
    for key in keys:
        rt.store.delete(key)
    return len(keys)


def _delete_prefix(rt: Runtime, prefix: str) -> None:
    """Every object under ``prefix`` (a store outage propagates: the caller retries the whole deletion)."""
    for key in rt.store.list(prefix):
        rt.store.delete(key)
