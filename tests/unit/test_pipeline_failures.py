"""Pipeline failure paths in embedded mode: a broken analysis never blocks the claim report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from claimlens.checks.base import Check, ClaimContext, Finding, PhotoInfo, PhotoResult
from claimlens.core.claims import store_photo, submit_claim, upsert_claim
from claimlens.core.db import session_scope
from claimlens.core.models import Photo
from claimlens.core.pipeline import Runtime, analyse_photo, assess_claim, record_photo_failure
from claimlens.core.scan import embedded_runtime
from claimlens.core.schemas import ClaimFields, PhotoUploadMeta, Stage
from claimlens.core.storage import ObjectNotFound
from claimlens.vision.decode import DecodedPhoto
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


class _ClaimPhaseRaises(Check):
    """A check whose claim phase raises a chosen exception (its photo phase records nothing)."""

    name = "raises"
    version = "1"

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def analyse_photo(self, photo: DecodedPhoto, info: PhotoInfo) -> PhotoResult:
        return PhotoResult()

    def assess_claim(self, ctx: ClaimContext) -> list[Finding]:
        raise self.exc


def _claim_with_a_photo(rt: Runtime, claim_id: str) -> int:
    with session_scope(rt.db_url) as s:
        upsert_claim(s, ClaimFields(claim_id=claim_id), owner="t")
    pid = store_photo(rt, claim_id, jpeg(claim_id), filename="a.jpg", content_type=None,
                      meta=PhotoUploadMeta(stage=Stage.SURVEY)).photo_id
    revision, _ = submit_claim(rt, claim_id)
    assert analyse_photo(rt, pid) == "analysed"
    return revision


def test_a_broken_claim_check_is_reported_but_a_service_outage_reaches_the_task(tmp_path: Path) -> None:
    import json

    from sqlalchemy.exc import OperationalError

    base = embedded_runtime(tmp_path)
    broken = replace(base, checks=(_ClaimPhaseRaises(ValueError("bug")),))
    revision = _claim_with_a_photo(broken, "F2")
    assert assess_claim(broken, "F2", revision) == "final"
    report = json.loads(broken.store.get("claims/F2/report.json"))
    assert [f["code"] for f in report["findings"]] == ["check.failed"]

    outage = replace(base, checks=(_ClaimPhaseRaises(OperationalError("SELECT 1", {}, Exception("gone"))),))
    revision = _claim_with_a_photo(outage, "F3")
    with pytest.raises(OperationalError):  # the Celery task retries it on a fresh session
        assess_claim(outage, "F3", revision)
    with pytest.raises(ObjectNotFound):  # and no report was written as if the check had failed
        outage.store.get("claims/F3/report.json")
