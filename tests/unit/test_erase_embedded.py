"""Erasing a claim in embedded mode (SQLite + local directory store): the same code as the service."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from claimlens.core.claims import delete_claim, store_photo, submit_claim, upsert_claim
from claimlens.core.db import session_scope
from claimlens.core.hamming_index import hamming_codes
from claimlens.core.models import Claim, ClaimLink, FindingRow, Photo, PhotoKey
from claimlens.core.pipeline import analyse_photo, assess_claim
from claimlens.core.scan import embedded_runtime
from claimlens.core.schemas import ClaimFields, PhotoUploadMeta, Stage
from tests.support.photos import jpeg


def counts(rt, claim_id: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with session_scope(rt.db_url) as s:
        def n(q) -> int:  # type: ignore[no-untyped-def]
            return int(s.scalar(q))
        return {
            "claims": n(select(func.count()).select_from(Claim).where(Claim.id == claim_id)),
            "photos": n(select(func.count()).select_from(Photo).where(Photo.claim_id == claim_id)),
            "findings": n(select(func.count()).select_from(FindingRow).where(FindingRow.claim_id == claim_id)),
            "photo_keys": n(select(func.count()).select_from(PhotoKey).where(PhotoKey.claim_id == claim_id)),
            "hamming": n(select(func.count()).select_from(hamming_codes).where(hamming_codes.c.claim_id == claim_id)),
            "links": n(select(func.count()).select_from(ClaimLink).where(
                (ClaimLink.claim_a == claim_id) | (ClaimLink.claim_b == claim_id))),
        }


def test_erase_claim_embedded(tmp_path: Path) -> None:
    rt = embedded_runtime(tmp_path)
    meta = PhotoUploadMeta(stage=Stage.SURVEY)
    shared = jpeg("erase-shared")
    for claim_id in ("E1", "E2"):  # E2 reuses E1's photo: findings and a link between them
        with session_scope(rt.db_url) as s:
            upsert_claim(s, ClaimFields(claim_id=claim_id, plate="沪A12345"), owner="t")
        ids = [store_photo(rt, claim_id, data, filename=f"{i}.jpg", content_type=None, meta=meta).photo_id
               for i, data in enumerate([shared, jpeg(f"erase-{claim_id}")])]
        revision, _ = submit_claim(rt, claim_id)
        for pid in ids:
            assert analyse_photo(rt, pid) == "analysed"
        assert assess_claim(rt, claim_id, revision) == "final"
    before = counts(rt, "E1")
    assert before["photos"] == 2 and before["photo_keys"] and before["hamming"] and before["links"]
    assert delete_claim(rt, "E1") is True
    assert counts(rt, "E1") == dict.fromkeys(before, 0)
    assert rt.store.list("claims/E1/") == [] and rt.store.list("claims/E2/report.json")
    assert delete_claim(rt, "E1") is False
    assert counts(rt, "E2")["photos"] == 2
