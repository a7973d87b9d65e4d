"""Bad input and access control through the real API: clear 4xx JSON errors or a recorded per-photo
finding; never a crashed worker, never a half-stored claim."""

from __future__ import annotations

import io
import struct
import zlib

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_reliability import objects
from tests.support.photos import jpeg, picture

pytestmark = pytest.mark.e2e


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims 10^10 pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def upload(c: httpx.Client, claim_id: str, data: bytes, name: str = "p.jpg") -> httpx.Response:
    return c.post(f"/v1/claims/{claim_id}/photos", data={"stage": "survey"},
                  files={"file": (name, data, "image/jpeg")})


def test_bad_uploads_get_clear_errors_and_store_nothing(stack: Stack, run_id: str) -> None:
    claim_id = f"BAD-{run_id}"
    with stack.client() as c:
        assert c.put(f"/v1/claims/{claim_id}", json={}).status_code == 201
        cases = {
            "empty": (b"", 400, "empty"),
            "not_image": (b"%PDF-1.4 definitely not a jpeg" * 20, 415, "not_an_image"),
            "bomb": (png_bomb(), 413, "too_many_pixels"),
            "oversize": (b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024), 413, "too_large"),
        }
        for name, (data, status, code) in cases.items():
            r = upload(c, claim_id, data, f"{name}.jpg")
            assert r.status_code == status, (name, r.text)
            assert r.json()["error"]["code"] == code, (name, r.json())
            assert set(r.json()["error"]) >= {"code", "message"}
        assert c.get(f"/v1/claims/{claim_id}/photos").json() == []
        assert [k for k in objects(stack, f"claims/{claim_id}/") if "/photos/" in k] == []

        bad_meta = c.post(f"/v1/claims/{claim_id}/photos", data={"stage": "holiday"},
                          files={"file": ("a.jpg", jpeg(f"{run_id}-meta"), "image/jpeg")})
        assert bad_meta.status_code == 422 and bad_meta.json()["error"]["code"] == "invalid_photo_metadata"

        good = jpeg(f"{run_id}-good")
        truncated = jpeg(f"{run_id}-trunc", size=(1200, 900))
        truncated = truncated[: len(truncated) // 2]
        garbage_exif = good[:2] + b"\xff\xe1\x00\x20Exif\x00\x00" + bytes(range(24)) + good[2:]
        first = upload(c, claim_id, good)
        again = upload(c, claim_id, good)
        assert first.status_code == 201 and again.status_code == 200
        assert again.json()["photo_id"] == first.json()["photo_id"] and again.json()["duplicate_of_existing"]
        trunc_id = upload(c, claim_id, truncated).json()["photo_id"]
        exif_id = upload(c, claim_id, garbage_exif).json()["photo_id"]
        assert c.post(f"/v1/claims/{claim_id}/submit").status_code == 202
    stack.wait_final(claim_id)
    with stack.client() as c:
        report = c.get(f"/v1/claims/{claim_id}/report").json()
    status = {p["photo_id"]: p["status"] for p in report["photos"]}
    assert status[trunc_id] == "error" and status[exif_id] == "analysed"
    unreadable = [f for f in report["findings"] if f["code"] == "photo.unreadable"]
    assert [f["photo_id"] for f in unreadable] == [trunc_id]
    assert unreadable[0]["evidence"]["reason"] == "corrupt"


@pytest.mark.parametrize("claim_id, status", [
    ("a" * 65, 422), ("..", 422), ("-lead", 422), ("bad%20id", 422), ("ok..no", 422)])
def test_claim_ids_are_validated(stack: Stack, claim_id: str, status: int) -> None:
    with stack.client() as c:
        r = c.put(f"/v1/claims/{claim_id}", json={})
    assert r.status_code in (status, 404), r.text
    assert "error" in r.json()


def test_unknown_fields_and_bad_values_are_rejected(stack: Stack, run_id: str) -> None:
    with stack.client() as c:
        r = c.put(f"/v1/claims/F-{run_id}", json={"loss_lat": 123, "nonsense": 1})
    assert r.status_code == 422
    fields = {tuple(d["loc"])[-1] for d in r.json()["error"]["details"]}
    assert {"loss_lat", "nonsense"} <= fields


def test_roles_and_scoping(stack: Stack, run_id: str) -> None:
    with stack.client() as admin:
        keys = {}
        for role in ("adjuster", "investigator"):
            for n in (1, 2) if role == "adjuster" else (1,):
                r = admin.post("/v1/keys", json={"name": f"{role}{n}-{run_id}", "role": role})
                assert r.status_code == 201, r.text
                keys[f"{role}{n}"] = r.json()["key"]
    assert httpx.get(f"{stack.base_url}/v1/claims/X").status_code == 401
    with stack.client("clk_wrong") as c:
        assert c.get("/v1/claims/X").json()["error"]["code"] == "unauthorized"
    claim_id = f"ROLE-{run_id}"
    with stack.client(keys["adjuster1"]) as a1:
        assert a1.put(f"/v1/claims/{claim_id}", json={"plate": "沪A00001"}).status_code == 201
        assert upload(a1, claim_id, jpeg(f"{run_id}-r")).status_code == 201
        assert a1.post("/v1/keys", json={"name": "x", "role": "admin"}).status_code == 403
    with stack.client(keys["adjuster2"]) as a2:
        assert a2.get(f"/v1/claims/{claim_id}").status_code == 404  # others' claims are invisible
        assert upload(a2, claim_id, jpeg(f"{run_id}-r2")).status_code == 404
    with stack.client(keys["investigator1"]) as inv:
        assert inv.get(f"/v1/claims/{claim_id}").json()["fields"]["plate"] == "沪A00001"
        assert inv.put(f"/v1/claims/{claim_id}", json={"plate": "x"}).status_code == 403
    with stack.client() as admin:
        assert admin.delete(f"/v1/keys/adjuster1-{run_id}").status_code == 204
    with stack.client(keys["adjuster1"]) as a1:
        assert a1.get(f"/v1/claims/{claim_id}").status_code == 401


def test_presigned_url_is_scoped_to_one_key(stack: Stack, run_id: str) -> None:
    claim_id = f"PRE-{run_id}"
    with stack.client() as c:
        assert c.put(f"/v1/claims/{claim_id}", json={}).status_code == 201
        up = c.post(f"/v1/claims/{claim_id}/uploads", json={"stage": "survey", "filename": "x.jpg"}).json()
        assert c.post(up["commit_url"]).status_code == 409  # nothing uploaded yet
        other = up["upload_url"].replace(up["photo_id"], "00000000-0000-0000-0000-000000000000")
        assert httpx.put(other, content=b"x").status_code == 403
        buf = io.BytesIO()
        picture(f"{run_id}-pre").save(buf, format="PNG")
        assert httpx.put(up["upload_url"], content=buf.getvalue()).status_code == 200
        done = c.post(up["commit_url"])
        assert done.status_code == 200 and done.json()["status"] == "stored"
        assert c.post(up["commit_url"]).json()["photo_id"] == up["photo_id"]  # idempotent


def test_openapi_is_served(stack: Stack) -> None:
    spec = httpx.get(f"{stack.base_url}/v1/openapi.json").json()
    assert "/v1/claims/{claim_id}/photos" in spec["paths"] and "/v1/claims/{claim_id}/uploads" in spec["paths"]
