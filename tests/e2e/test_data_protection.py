"""Data protection over the real stack: erasing a claim (objects, rows, index entries, links; audited;
admin only) and no personal data (API keys, plates, VINs, GPS) in the API's or the workers' logs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import httpx
import pytest
from minio import Minio
from sqlalchemy import create_engine, text

from tests.e2e.conftest import ADMIN_KEY, Stack
from tests.support.photos import jpeg

pytestmark = pytest.mark.e2e
CST = timezone(timedelta(hours=8))


def bucket_keys(stack: Stack, prefix: str) -> list[str]:
    env = stack.env
    client = Minio(endpoint=env["CLAIMLENS_S3_ENDPOINT"], access_key=env["CLAIMLENS_S3_ACCESS_KEY"],
                   secret_key=env["CLAIMLENS_S3_SECRET_KEY"], secure=False)
    return [o.object_name for o in client.list_objects(bucket_name=env["CLAIMLENS_BUCKET"], prefix=prefix,
                                                       recursive=True)]


def row_counts(stack: Stack, claim_id: str) -> dict[str, int]:
    queries = {
        "claims": "SELECT count(*) FROM claims WHERE id = :c",
        "photos": "SELECT count(*) FROM photos WHERE claim_id = :c",
        "findings": "SELECT count(*) FROM findings WHERE claim_id = :c",
        "photo_keys": "SELECT count(*) FROM photo_keys WHERE claim_id = :c",
        "hamming_codes": "SELECT count(*) FROM hamming_codes WHERE claim_id = :c",
        "claim_links": "SELECT count(*) FROM claim_links WHERE claim_a = :c OR claim_b = :c OR source_claim = :c",
        "decisions": "SELECT count(*) FROM decisions WHERE claim_id = :c",
    }
    engine = create_engine(stack.env["CLAIMLENS_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return {name: int(conn.execute(text(q), {"c": claim_id}).scalar_one()) for name, q in queries.items()}
    finally:
        engine.dispose()


def _claim_with_photos(c: httpx.Client, claim_id: str, photos: list[bytes], **fields: object) -> None:
    assert c.put(f"/v1/claims/{claim_id}", json=fields).status_code == 201
    for i, data in enumerate(photos):
        r = c.post(f"/v1/claims/{claim_id}/photos", data={"stage": "survey"},
                   files={"file": (f"p{i}.jpg", data, "image/jpeg")})
        assert r.status_code == 201, r.text


def test_delete_claim_erases_objects_rows_index_and_links(stack: Stack, run_id: str) -> None:
    a, b = f"DEL-{run_id}-A", f"DEL-{run_id}-B"
    shared = jpeg(f"{run_id}-del-shared")
    with stack.client() as c:
        _claim_with_photos(c, a, [shared, jpeg(f"{run_id}-del-a1")])
        assert c.post(f"/v1/claims/{a}/submit").status_code == 202
        stack.wait_final(a)
        _claim_with_photos(c, b, [shared, jpeg(f"{run_id}-del-b1")])  # B reuses A's photo: a link
        assert c.post(f"/v1/claims/{b}/submit").status_code == 202
        stack.wait_final(b)
        before = row_counts(stack, a)
        assert before["photos"] == 2 and before["photo_keys"] > 0 and before["hamming_codes"] > 0
        assert before["claim_links"] > 0 and bucket_keys(stack, f"claims/{a}/")

        adjuster = c.post("/v1/keys", json={"name": f"del-adj-{run_id}", "role": "adjuster"}).json()["key"]
        with stack.client(adjuster) as adj:
            assert adj.delete(f"/v1/claims/{a}").status_code == 403
        r = c.delete(f"/v1/claims/{a}")
        assert r.status_code == 204, r.text

        assert c.get(f"/v1/claims/{a}").status_code == 404
        assert bucket_keys(stack, f"claims/{a}/") == []
        assert row_counts(stack, a) == dict.fromkeys(before, 0)
        assert c.delete(f"/v1/claims/{a}").status_code == 404  # already erased
        stack.wait_log("claimlens.sweep_erased_claim")  # the late sweep is queued (it runs after ~16 min)
        assert c.delete(f"/v1/claims/NOPE-{run_id}").status_code == 404
        assert c.delete("/v1/claims/bad id!").status_code in (404, 422)
        # the other claim stays whole; its own report is its record
        assert c.get(f"/v1/claims/{b}").status_code == 200
        assert bucket_keys(stack, f"claims/{b}/report.json") == [f"claims/{b}/report.json"]
        audit = c.get("/v1/audit", params={"action": "claim_deleted", "claim_id": a})
        assert audit.status_code == 200, audit.text
        assert [e["principal"] for e in audit.json()["events"]] == ["bootstrap-admin"]


def test_no_personal_data_in_logs(stack: Stack, run_id: str) -> None:
    """A whole claim flow with a plate, a VIN, GPS in the claim and in the photos' EXIF, a search by plate
    and a new key, then every log line the API and the workers wrote is searched for them."""
    digits = int(run_id, 16) % 100000
    plate = f"沪A{digits:05d}"
    vin = f"LSVAU2180N{digits:06d}1"[:17]
    lat, lon = 31.0 + digits / 1e6 + 0.1234, 121.0 + digits / 1e6 + 0.5678
    loss = datetime(2026, 5, 1, 9, 0, tzinfo=CST)
    claim_id = f"PII-{run_id}"
    with stack.client() as c:
        key = c.post("/v1/keys", json={"name": f"pii-{run_id}", "role": "adjuster"}).json()["key"]
        with stack.client(key) as adj:
            _claim_with_photos(adj, claim_id, [jpeg(f"{run_id}-pii{i}", when=loss + timedelta(hours=i + 1),
                                                    gps=(lat, lon)) for i in range(2)],
                               plate=plate, vin=vin, loss_lat=lat, loss_lon=lon, loss_time=loss.isoformat(),
                               policy_start="2026-01-01T00:00:00+08:00", loss_type="collision",
                               third_party={"plate": plate, "vin": vin})
            assert adj.post(f"/v1/claims/{claim_id}/submit").status_code == 202
            assert adj.get(f"/v1/claims/{claim_id}/photos").status_code == 200
            assert adj.get("/v1/claims", params={"q": plate}).status_code in (200, 403)
            assert adj.get("/v1/claims", params={"q": vin}).status_code in (200, 403)
            assert adj.put(f"/v1/claims/{claim_id}", json={"vin": "not a vin !"}).status_code in (200, 422)
        stack.wait_final(claim_id)
        assert c.get(f"/v1/claims/{claim_id}/report").status_code == 200
        assert c.get("/v1/claims", params={"q": plate}).status_code == 200
        rotated = c.post(f"/v1/keys/pii-{run_id}/rotate", json={"grace_seconds": 0}).json()["key"]
    assert httpx.get(f"{stack.base_url}/v1/claims/{claim_id}", headers={"X-API-Key": key}).status_code == 401
    logs = {p.name: p.read_text(errors="replace") for p in stack.log_dir.glob("*.log")}
    assert any(claim_id in text for text in logs.values()), "the logs were not captured"
    forbidden = {"plate": plate, "plate (escaped)": plate.encode("unicode_escape").decode(),
                 "plate (URL)": quote(plate), "plate (URL, lower)": quote(plate).lower(),
                 "vin": vin, "api key": key, "rotated key": rotated, "admin key": ADMIN_KEY,
                 "latitude": f"{lat:.4f}", "longitude": f"{lon:.4f}"}
    leaks = [f"{what} in {name}" for name, text in logs.items() for what, value in forbidden.items() if value in text]
    assert leaks == []
