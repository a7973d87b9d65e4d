"""The cross-claim index as the checks see it (:class:`claimlens.checks.base.CrossClaimIndex`), over the
``photo_keys`` table (exact keys) and the Hamming-code index, in PostgreSQL or SQLite alike."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from claimlens.checks.base import CodeHit, IndexHit
from claimlens.core.hamming_index import HammingIndex
from claimlens.core.models import Photo, PhotoKey


class SqlCrossClaimIndex:
    def __init__(self, session: Session) -> None:
        self.session = session

    def lookup(self, kind: str, values: list[str]) -> list[IndexHit]:
        if not values:
            return []
        rows = self.session.execute(
            select(PhotoKey.photo_id, PhotoKey.claim_id, PhotoKey.value, Photo.stage, Photo.role,
                   Photo.uploaded_at)
            .join(Photo, Photo.id == PhotoKey.photo_id)
            .where(PhotoKey.kind == kind, PhotoKey.value.in_(values))
            .order_by(Photo.uploaded_at, PhotoKey.photo_id)
        ).all()
        return [IndexHit(photo_id=r.photo_id, claim_id=r.claim_id, stage=r.stage, role=r.role,
                         uploaded_at=r.uploaded_at, key_kind=kind, key_value=r.value) for r in rows]

    def search_codes(self, kind: str, codes: list[int], max_distance: int, limit: int = 50) -> list[CodeHit]:
        found = HammingIndex().search(self.session, kind, codes, max_distance, limit=limit)
        if not found:
            return []
        meta = {
            r.id: r for r in self.session.execute(
                select(Photo.id, Photo.stage, Photo.role, Photo.uploaded_at)
                .where(Photo.id.in_([f[0] for f in found]))
            ).all()
        }
        return [CodeHit(photo_id=pid, claim_id=cid, stage=meta[pid].stage, role=meta[pid].role,
                        uploaded_at=meta[pid].uploaded_at, kind=kind, distance=int(dist))
                for pid, cid, dist in found if pid in meta]


def replace_photo_index(session: Session, photo: Photo, index_keys: dict[str, list[str]],
                        codes: dict[str, list[int]]) -> None:
    """Make the index rows of one photo exactly these (idempotent: re-running writes the same rows)."""
    session.execute(delete(PhotoKey).where(PhotoKey.photo_id == photo.id))
    seen: set[tuple[str, str]] = set()
    for kind, values in index_keys.items():
        for value in values:
            if (kind, value) not in seen:
                seen.add((kind, value))
                session.add(PhotoKey(photo_id=photo.id, claim_id=photo.claim_id, kind=kind, value=value))
    index = HammingIndex()
    index.remove(session, photo.id)
    for kind, values in codes.items():
        index.add(session, kind, photo.id, photo.claim_id, values)
