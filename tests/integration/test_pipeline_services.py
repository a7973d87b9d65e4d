"""The pipeline against real PostgreSQL and the S3 server, in-process: idempotency and storage layout."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import func, select

from claimlens.config import get_settings
from claimlens.core import layout
from claimlens.core.claims import create_presigned_upload, store_photo, submit_claim, upsert_claim
from claimlens.core.db import session_scope
from claimlens.core.models import FindingRow, Photo, PhotoKey
from claimlens.core.pipeline import Runtime, analyse_photo, assess_claim
from claimlens.core.schemas import ClaimFields, PhotoUploadMeta, Stage
from claimlens.core.storage import ObjectNotFound, S3Store, StorageUnavailable
from tests.support.photos import jpeg

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(settings_env: dict[str, str]) -> Runtime:
    settings = get_settings()
    return Runtime(settings=settings, store=S3Store(settings))


def test_s3_store_roundtrip_and_presigned_put(rt: Runtime, run_id: str) -> None:
    key = f"it/{run_id}/a.bin"
    rt.store.put(key, b"hello")
    assert rt.store.get(key) == b"hello" and rt.store.size(key) == 5
    assert rt.store.list(f"it/{run_id}/") == [key]
    url = rt.store.presigned_put_url(f"it/{run_id}/b.bin", 60)
    assert httpx.put(url, content=b"via presign").status_code == 200
    assert rt.store.get(f"it/{run_id}/b.bin") == b"via presign"
    rt.store.delete(key)
    assert rt.store.size(key) is None
    with pytest.raises(ObjectNotFound):
        rt.store.get(key)


def test_s3_store_unreachable_is_a_transient_error(settings_env: dict[str, str]) -> None:
    settings = get_settings().model_copy(update={"s3_endpoint": "127.0.0.1:1"})
    with pytest.raises(StorageUnavailable):
        S3Store(settings).put("x", b"y")


def test_analysing_twice_leaves_identical_rows_and_objects(rt: Runtime, run_id: str) -> None:
    claim_id = f"IDEM-{run_id}"
    with session_scope(rt.db_url) as s:
        upsert_claim(s, ClaimFields(claim_id=claim_id), owner="test")
    meta = PhotoUploadMeta(stage=Stage.SURVEY)
    p1 = store_photo(rt, claim_id, jpeg(f"{run_id}-1"), filename="1.jpg", content_type="image/jpeg", meta=meta)
    p2 = store_photo(rt, claim_id, jpeg(f"{run_id}-1", quality=70), filename="2.jpg", content_type=None, meta=meta)
    create_presigned_upload(rt, claim_id, filename="never.jpg", content_type=None, meta=meta)  # never uploaded
    revision, ids = submit_claim(rt, claim_id)
    assert sorted(ids) == sorted([p1.photo_id, p2.photo_id])

    def snapshot() -> tuple:
        with session_scope(rt.db_url) as s:
            keys = s.execute(select(PhotoKey.photo_id, PhotoKey.kind, PhotoKey.value)
                             .where(PhotoKey.claim_id == claim_id).order_by(PhotoKey.id)).all()
            nf = s.scalar(select(func.count()).select_from(FindingRow).where(FindingRow.claim_id == claim_id))
            return sorted(map(tuple, keys)), nf

    for pid in ids:
        assert analyse_photo(rt, pid) == "analysed"
    assert assess_claim(rt, claim_id, revision) == "final"
    first = snapshot()
    report_1 = rt.store.get(layout.report_json_key(claim_id))
    with session_scope(rt.db_url) as s:  # force a full re-run, as a redelivered task would do
        for p in s.scalars(select(Photo).where(Photo.claim_id == claim_id)):
            p.analysis_version = "stale"
    for pid in ids:
        assert analyse_photo(rt, pid) == "analysed"
    assert assess_claim(rt, claim_id, revision) == "final"
    assert snapshot() == first
    report_2 = rt.store.get(layout.report_json_key(claim_id))
    assert json.loads(report_2)["findings"] == json.loads(report_1)["findings"]  # same evidence after a re-run
    keys = rt.store.list(layout.claim_prefix(claim_id))
    assert sum(k.endswith("analysis.json") for k in keys) == 2
    assert sum("/original" in k for k in keys) == 2
    assert assess_claim(rt, claim_id, revision - 1) == "superseded"
