"""The cross-claim index as the checks see it (:class:`claimlens.checks.base.CrossClaimIndex`), over the
``photo_keys`` table (exact keys) and the Hamming-code index, in PostgreSQL or SQLite alike; with
``CLAIMLENS_INDEX_ENGINE=milvus`` the code searches go to Milvus (:mod:`claimlens.core.milvus_index`) while
the ``hamming_codes`` table stays the record of every photo's codes (what ``claimlens index rebuild`` reads)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from claimlens.checks.base import CodeHit, IndexHit
from claimlens.core.hamming_index import HammingIndex
from claimlens.core.models import Photo, PhotoKey

if TYPE_CHECKING:
    from claimlens.core.milvus_index import MilvusCodeIndex


class SqlCrossClaimIndex:
    """``code_index``: a Milvus code index serving ``search_codes`` (None: the database's Hamming table)."""

    def __init__(self, session: Session, code_index: MilvusCodeIndex | None = None) -> None:
        self.session = session
        self.code_index = code_index

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
        if self.code_index is not None:
            found = self.code_index.search(kind, codes, max_distance, limit=limit)
        else:
            found = HammingIndex().search(self.session, kind, codes, max_distance, limit=limit)
        return self._hits(kind, [(pid, cid, int(dist)) for pid, cid, dist in found])

    @property
    def searches_vectors(self) -> bool:
        """Whether :meth:`search_vectors` can answer (the Milvus engine)."""
        return self.code_index is not None

    def search_vectors(self, kind: str, vector: list[float], limit: int = 10,
                       exclude_claim: str | None = None) -> list[CodeHit]:
        """Milvus engine only (the database keeps no float vectors: the postgres engine returns nothing)."""
        if self.code_index is None or not len(vector):
            return []
        found = self.code_index.search_vectors(kind, vector, limit=limit, exclude_claim=exclude_claim)
        return self._hits(kind, [(pid, cid, vector_distance(sim)) for pid, cid, sim in found])

    def _hits(self, kind: str, found: list[tuple[str, str, int]]) -> list[CodeHit]:
        """Index answers joined with the photos' stage, role and upload time (photos gone since: dropped)."""
        if not found:
            return []
        meta = {
            r.id: r for r in self.session.execute(
                select(Photo.id, Photo.stage, Photo.role, Photo.uploaded_at)
                .where(Photo.id.in_([f[0] for f in found]))
            ).all()
        }
        return [CodeHit(photo_id=pid, claim_id=cid, stage=meta[pid].stage, role=meta[pid].role,
                        uploaded_at=meta[pid].uploaded_at, kind=kind, distance=dist)
                for pid, cid, dist in found if pid in meta]


def vector_distance(similarity: float) -> int:
    """A cosine similarity as ``CodeHit.distance``: 100 x the cosine distance, rounded, in 0..200."""
    return max(0, min(200, round(100.0 * (1.0 - float(similarity)))))


def replace_photo_index(session: Session, photo: Photo, index_keys: dict[str, list[str]],
                        codes: dict[str, list[int]], code_index: MilvusCodeIndex | None = None,
                        vectors: dict[str, list[float]] | None = None) -> None:
    """Make the index rows of one photo exactly these (idempotent: re-running writes the same rows).
    ``vectors`` (float embeddings) go to Milvus only; the postgres engine ignores them.

    With a Milvus ``code_index`` the codes also go there, last, inside the caller's transaction: when Milvus
    is down this raises :class:`claimlens.core.milvus_index.IndexUnavailable`, the transaction rolls back
    and the task retries; when the commit fails after Milvus was written, the retry writes the same rows.
    """
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
    if code_index is not None:
        code_index.replace_photo(photo.id, photo.claim_id, codes, vectors or {})


def rebuild_code_index(db_url: str, code_index: MilvusCodeIndex, batch: int = 20_000) -> dict[str, int]:
    """Re-create the Milvus collections from the database's ``hamming_codes`` table (the system of record):
    every collection under the index's prefix is dropped, then each kind's codes are inserted in batches.
    Returns rows inserted per kind. Photos analysed while it runs are written by their own tasks (upserts),
    so run it when the collections are lost or their layout changed, not as routine maintenance."""
    from claimlens.core.db import session_scope
    from claimlens.core.hamming_index import hamming_codes, join_code, to_unsigned64

    t = hamming_codes
    code_index.drop()
    counts: dict[str, int] = {}
    with session_scope(db_url) as s:
        kinds = [k for (k,) in s.execute(select(t.c.kind).group_by(t.c.kind).order_by(t.c.kind))]
        for kind in kinds:
            code_index.ensure(kind)
            counts[kind] = 0
            rows: list[dict] = []
            stmt = (select(t.c.photo_id, t.c.claim_id, t.c.code, t.c.code_ext).where(t.c.kind == kind)
                    .order_by(t.c.photo_id))
            for photo_id, claim_id, code, ext in s.execute(stmt.execution_options(yield_per=batch)):
                full = join_code(to_unsigned64(code), bytes(ext))
                rows.extend(code_index.rows(kind, photo_id, claim_id, [full]))
                if len(rows) >= batch:
                    code_index.bulk_insert(kind, rows)
                    counts[kind] += len(rows)
                    rows = []
            if rows:
                code_index.bulk_insert(kind, rows)
                counts[kind] += len(rows)
    return counts
