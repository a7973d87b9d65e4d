"""Pure logic of the backbone: claim ids, object layout, the local store, the exact-duplicate check."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from claimlens.checks.base import ClaimContext, IndexHit, PhotoAnalysis, PhotoInfo, Severity
from claimlens.checks.exact_duplicate import ExactDuplicateCheck
from claimlens.core import layout
from claimlens.core.schemas import ClaimFields
from claimlens.core.storage import LocalStore, ObjectNotFound


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "a" * 65, ".hidden", "a..b", "x y", "沪A"])
def test_claim_ids_that_could_escape_or_confuse_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        ClaimFields(claim_id=bad)


def test_claim_fields_forbid_unknown_keys() -> None:
    with pytest.raises(ValueError):
        ClaimFields.model_validate({"claim_id": "ok", "surprise": 1})


def test_layout_keeps_everything_under_the_claim_prefix() -> None:
    prefix = layout.claim_prefix("C1")
    keys = [layout.original_key("C1", "p", "IMG_1.HEIC"), layout.analysis_key("C1", "p"),
            layout.artifact_key("C1", "p", "chk", "../../etc"), layout.evidence_key("C1", 3, "a/b.jpg"),
            layout.report_json_key("C1"), layout.report_html_key("C1"), layout.thumbnail_key("C1", "p")]
    assert all(k.startswith(prefix) and ".." not in k.split("/") for k in keys)
    assert layout.original_key("C1", "p", "IMG_1.HEIC").endswith("original.heic")


def test_local_store_is_atomic_and_refuses_escapes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "bucket")
    store.put("claims/a/x.json", b"1")
    store.put("claims/a/x.json", b"2")
    assert store.get("claims/a/x.json") == b"2"
    assert store.list("claims/") == ["claims/a/x.json"]
    assert not list((tmp_path / "bucket").rglob(".tmp-*"))
    with pytest.raises(ValueError):
        store.put("../outside", b"x")
    with pytest.raises(ObjectNotFound):
        store.get("claims/none")


class FakeIndex:
    def __init__(self, hits: dict[tuple[str, str], list[IndexHit]]) -> None:
        self.hits = hits

    def lookup(self, kind: str, values: list[str]) -> list[IndexHit]:
        return [h for v in values for h in self.hits.get((kind, v), [])]

    def search_codes(self, kind: str, codes: list[int], max_distance: int, limit: int = 50) -> list:
        return []


def _photo(pid: str, claim: str, stage: str, sha: str, pix: str, when: datetime) -> PhotoAnalysis:
    info = PhotoInfo(photo_id=pid, claim_id=claim, stage=stage, role=None, sha256=sha, size_bytes=1,
                     filename=None, uploaded_at=when)
    return PhotoAnalysis(info=info, data={"exact_duplicate": {"sha256": sha, "pixel_sha256": pix}})


def test_exact_duplicate_direction_and_same_claim_stage_pairs() -> None:
    t0, t1, t2 = (datetime(2026, 1, d, tzinfo=UTC) for d in (1, 2, 3))
    mine = _photo("p1", "NEW", "survey", "s1", "x1", t1)
    twin = _photo("p2", "NEW", "reinspection", "s2", "x1", t1)
    earlier = IndexHit("o1", "OLD", "survey", None, t0, "sha256", "s1")
    later = IndexHit("o2", "LATER", "survey", None, t2, "pixels", "x1")
    def me(p: PhotoAnalysis, kind: str, value: str) -> IndexHit:
        return IndexHit(p.info.photo_id, p.info.claim_id, p.info.stage, None, p.info.uploaded_at, kind, value)
    index = FakeIndex({("sha256", "s1"): [me(mine, "sha256", "s1"), earlier],
                       ("pixels", "x1"): [me(mine, "pixels", "x1"), me(twin, "pixels", "x1"), later]})
    ctx = ClaimContext(claim={"claim_id": "NEW"}, photos=[mine, twin], index=index,
                       load_artifact=lambda *a: None, load_thumbnail=lambda *a: None)
    found = {(f.code, f.photo_id, f.evidence.get("linked_claim_id") or f.evidence.get("other_photo_id"))
             : f.severity for f in ExactDuplicateCheck().assess_claim(ctx)}
    assert found[("exact_duplicate.cross_claim", "p1", "OLD")] == Severity.HIGH
    assert found[("exact_duplicate.reused_elsewhere", "p1", "LATER")] == Severity.LOW
    assert found[("exact_duplicate.same_claim", "p1", "p2")] == Severity.MEDIUM  # survey -> reinspection
    assert sum(code == "exact_duplicate.same_claim" for code, _, _ in found) == 1  # the pair is reported once
