"""Short-lived GET URLs for a claim's photos and evidence images, scoped to one object; and, for the local
store (embedded mode), the signed route that serves such an object."""

from __future__ import annotations

import mimetypes
import time
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy import select

from claimlens.api.deps import AuditDep, PrincipalDep, RuntimeDep
from claimlens.api.errors import ApiError
from claimlens.api.routes.claims import load_claim
from claimlens.core import layout
from claimlens.core.audit import record
from claimlens.core.db import session_scope
from claimlens.core.models import FindingRow, Photo
from claimlens.core.object_urls import OBJECT_ROUTE, key_in_claim, verify, view_url
from claimlens.core.storage import ObjectNotFound

router = APIRouter(tags=["objects"])


class ViewUrl(BaseModel):
    url: str
    expires_at: datetime


def _view(rt, key: str) -> ViewUrl:  # type: ignore[no-untyped-def]
    seconds = rt.settings.ui.view_url_expiry_seconds
    return ViewUrl(url=view_url(rt, key, seconds), expires_at=datetime.fromtimestamp(time.time() + seconds, UTC))


def photo_object_key(photo: Photo, variant: str) -> str:
    return photo.object_key if variant == "original" else layout.thumbnail_key(photo.claim_id, photo.id)


@router.get("/claims/{claim_id}/photos/{photo_id}/url", response_model=ViewUrl)
def photo_url(claim_id: str, photo_id: str, principal: PrincipalDep, rt: RuntimeDep, audit: AuditDep,
              variant: Literal["original", "thumbnail"] = "original") -> ViewUrl:
    """A presigned GET URL for the photo (or its thumbnail), valid CLAIMLENS_UI__VIEW_URL_EXPIRY_SECONDS."""
    with session_scope(rt.db_url) as s:
        claim = load_claim(s, principal, claim_id)
        photo = s.get(Photo, photo_id)
        if photo is None or photo.claim_id != claim.id:
            raise ApiError(404, "not_found", f"photo {photo_id} not found in claim {claim.id}")
        key = photo_object_key(photo, variant)
        record(s, audit, "read_photo", claim_id=claim.id, target=key, variant=variant)
    return _view(rt, key)


def is_evidence_of(s, claim_id: str, key: str) -> bool:  # type: ignore[no-untyped-def]
    """Whether ``key`` is an evidence image of one of the claim's current findings."""
    if not key_in_claim(claim_id, key):
        return False
    rows = s.scalars(select(FindingRow.evidence_keys).where(FindingRow.claim_id == claim_id)).all()
    return any(key in (keys or {}).values() for keys in rows)


@router.get("/claims/{claim_id}/evidence/url", response_model=ViewUrl)
def evidence_url(claim_id: str, key: str, principal: PrincipalDep, rt: RuntimeDep, audit: AuditDep) -> ViewUrl:
    """A presigned GET URL for one evidence image of one of the claim's findings (``key`` as in the report's
    ``evidence_images``)."""
    with session_scope(rt.db_url) as s:
        claim = load_claim(s, principal, claim_id)
        if not is_evidence_of(s, claim.id, key):
            raise ApiError(404, "not_found", "no such evidence image in this claim")
        record(s, audit, "read_evidence", claim_id=claim.id, target=key)
    return _view(rt, key)


@router.get(OBJECT_ROUTE.removeprefix("/v1") + "{key:path}", include_in_schema=True)
def signed_object(key: str, expires: int, signature: str, rt: RuntimeDep) -> Response:
    """Serve one object behind a URL signed by this server (the local store's stand-in for presigned S3
    URLs); no API key, the signature and expiry are the permission."""
    if not verify(rt, key, expires, signature):
        raise ApiError(403, "forbidden", "the URL is invalid or has expired")
    try:
        data = rt.store.get(key)
    except ObjectNotFound as exc:
        raise ApiError(404, "not_found", "no such object") from exc
    media = mimetypes.guess_type(key)[0] or "application/octet-stream"
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=300",
                                                     "X-Content-Type-Options": "nosniff"})
