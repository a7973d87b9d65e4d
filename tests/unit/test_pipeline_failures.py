"""Pipeline failure paths in embedded mode: a broken analysis never blocks the claim report."""

from __future__ import annotations

from pathlib import Path

from claimlens.core.claims import store_photo, submit_claim, upsert_claim
from claimlens.core.db import session_scope
from claimlens.core.models import Photo
from claimlens.core.pipeline import analyse_photo, assess_claim, record_photo_failure
from claimlens.core.scan import embedded_runtime
from claimlens.core.schemas import ClaimFields, PhotoUploadMeta, Stage
from tests.support.photos import jpeg


def test_internal_failure_is_reported_and_retried_on_next_submit(tmp_path: Path) -> None:
    rt = embedded_runtime(tmp_path)
    with session_scope(rt.db_url) as s:
        upsert_claim(s, ClaimFields(claim_id="F1"), owner="t")
    meta = PhotoUploadMeta(stage=Stage.SURVEY)
    ok = store_photo(rt, "F1", jpeg("ok"), filename="a.jpg", content_type=None, meta=meta).photo_id
    bad = store_photo(rt, "F1", jpeg("bad"), filename="b.jpg", content_type=None, meta=meta).photo_id
    revision, _ = submit_claim(rt, "F1")
    assert analyse_photo(rt, ok) == "analysed"
    assert record_photo_failure(rt, bad, RuntimeError("boom")) == "failed"
    assert assess_claim(rt, "F1", revision) == "final"  # the failed photo does not block the report
    import json

    report = json.loads(rt.store.get("claims/F1/report.json"))
    assert [f["photo_id"] for f in report["findings"] if f["code"] == "photo.analysis_failed"] == [bad]
    assert analyse_photo(rt, bad) == "analysed"  # a later run retries it
    with session_scope(rt.db_url) as s:
        assert s.get(Photo, bad).status == "analysed"
