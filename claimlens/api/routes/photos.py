"""Photo uploads: multipart through the API, or a presigned PUT straight to the object store + commit."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile
from kombu.exceptions import OperationalError as BrokerError
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select

from claimlens.api.deps import AuditDep, PrincipalDep, RuntimeDep
from claimlens.api.errors import ApiError
from claimlens.api.routes.claims import load_claim
from claimlens.core.audit import record
from claimlens.core.claims import StoredPhoto, commit_upload, create_presigned_upload, store_photo
from claimlens.core.db import session_scope
from claimlens.core.models import Photo
from claimlens.core.schemas import PhotoUploadMeta, Region, Role, Stage

router = APIRouter(prefix="/claims/{claim_id}", tags=["photos"])
log = logging.getLogger("claimlens.api")


class PhotoPublic(BaseModel):
    photo_id: str
    claim_id: str
    status: str
    sha256: str | None
    duplicate_of_existing: bool = False


class PhotoDetail(BaseModel):
    photo_id: str
    stage: str
    role: str | None
    filename: str | None
    status: str
    error: str | None
    sha256: str | None
    size_bytes: int | None
    uploaded_at: datetime | None
    analysed_at: datetime | None


def _queue_analysis(photo: StoredPhoto) -> None:
    """Start the per-photo analysis early. If the broker is down the photo is still safely stored and the
    claim's submit analyses it, so the upload does not fail."""
    if not photo.created:
        return
    from claimlens.workers.tasks import dispatch_photo

    try:
        dispatch_photo(photo.photo_id)
    except BrokerError:
        log.warning("broker unavailable; photo %s will be analysed at submit", photo.photo_id)


def _meta(stage: str, role: str | None, regions: str | None) -> PhotoUploadMeta:
    try:
        parsed = json.loads(regions) if regions else []
        return PhotoUploadMeta(stage=Stage(stage), role=Role(role) if role else None,
                               regions=[Region.model_validate(r) for r in parsed])
    except (ValueError, ValidationError, TypeError) as exc:
        raise ApiError(422, "invalid_photo_metadata", f"stage/role/regions not valid: {exc}") from exc


@router.post("/photos", response_model=PhotoPublic, status_code=201)
def upload_photo(claim_id: str, principal: PrincipalDep, rt: RuntimeDep, response: Response,
                 file: Annotated[UploadFile, File(description="the photo, byte-for-byte as taken")],
                 stage: Annotated[str, Form(description="underwriting|survey|assessment|reinspection|document")],
                 role: Annotated[str | None, Form()] = None,
                 regions: Annotated[str | None, Form(description='JSON list of {"x1","y1","x2","y2","part"}')] = None,
                 ) -> PhotoPublic:
    """Upload one photo (multipart). The same bytes uploaded again return the existing photo (200)."""
    meta = _meta(stage, role, regions)
    with session_scope(rt.db_url) as s:
        claim = load_claim(s, principal, claim_id, write=True)
        claim_id = claim.id
    data = file.file.read(rt.settings.max_upload_bytes + 1)
    stored = store_photo(rt, claim_id, data, filename=file.filename, content_type=file.content_type, meta=meta)
    _queue_analysis(stored)
    response.status_code = 201 if stored.created else 200
    return PhotoPublic(photo_id=stored.photo_id, claim_id=claim_id, status=stored.status, sha256=stored.sha256,
                       duplicate_of_existing=not stored.created)


class PresignRequest(BaseModel):
    stage: Stage
    role: Role | None = None
    regions: list[Region] = Field(default_factory=list, max_length=50)
    filename: str | None = Field(None, max_length=255)
    content_type: str | None = Field(None, max_length=100)


class PresignPublic(BaseModel):
    photo_id: str
    upload_url: str
    method: str = "PUT"
    expires_at: datetime
    commit_url: str


@router.post("/uploads", response_model=PresignPublic, status_code=201)
def create_upload(claim_id: str, body: PresignRequest, principal: PrincipalDep, rt: RuntimeDep) -> PresignPublic:
    """Reserve a photo and get a short-lived presigned PUT URL scoped to exactly its object key."""
    with session_scope(rt.db_url) as s:
        claim_id = load_claim(s, principal, claim_id, write=True).id
    meta = PhotoUploadMeta(stage=body.stage, role=body.role, regions=body.regions)
    photo_id, url, expires = create_presigned_upload(rt, claim_id, filename=body.filename,
                                                     content_type=body.content_type, meta=meta)
    return PresignPublic(photo_id=photo_id, upload_url=url, expires_at=expires,
                         commit_url=f"/v1/claims/{claim_id}/photos/{photo_id}/commit")


@router.post("/photos/{photo_id}/commit", response_model=PhotoPublic)
def commit_photo(claim_id: str, photo_id: str, principal: PrincipalDep, rt: RuntimeDep) -> PhotoPublic:
    """Confirm a presigned upload; the photo is then analysed like a multipart upload."""
    with session_scope(rt.db_url) as s:
        claim_id = load_claim(s, principal, claim_id, write=True).id
    stored = commit_upload(rt, claim_id, photo_id)
    _queue_analysis(stored)
    return PhotoPublic(photo_id=stored.photo_id, claim_id=claim_id, status=stored.status, sha256=stored.sha256,
                       duplicate_of_existing=stored.photo_id != photo_id)


@router.get("/photos", response_model=list[PhotoDetail])
def list_photos(claim_id: str, principal: PrincipalDep, rt: RuntimeDep, audit: AuditDep) -> list[PhotoDetail]:
    """The claim's photos with their analysis status."""
    with session_scope(rt.db_url) as s:
        claim = load_claim(s, principal, claim_id)
        record(s, audit, "read_claim", claim_id=claim.id, target="photos")
        rows = s.scalars(select(Photo).where(Photo.claim_id == claim.id).order_by(Photo.created_at)).all()
        return [PhotoDetail(photo_id=p.id, stage=p.stage, role=p.role, filename=p.filename, status=p.status,
                            error=p.error, sha256=p.sha256, size_bytes=p.size_bytes, uploaded_at=p.uploaded_at,
                            analysed_at=p.analysed_at) for p in rows]
