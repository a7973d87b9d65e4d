"""Data protection against the real S3 stand-in (SeaweedFS) and PostgreSQL: server-side encryption through
the minio SDK (what the stand-in supports, and what it does not), and a claim erasure interrupted by an
object-store outage that a retry finishes."""

from __future__ import annotations

import os
import secrets
import subprocess

import httpx
import pytest
from minio import Minio
from sqlalchemy import func, select

from claimlens.config import Settings, get_settings
from claimlens.core.claims import delete_claim, store_photo, sweep_erased_claim, upsert_claim
from claimlens.core.db import session_scope
from claimlens.core.models import Claim, Photo
from claimlens.core.pipeline import Runtime, analyse_photo
from claimlens.core.schemas import ClaimFields, PhotoUploadMeta, Stage
from claimlens.core.storage import S3Store, StorageUnavailable
from tests.conftest import REPO
from tests.support.photos import jpeg

pytestmark = pytest.mark.integration
S3_DATA = REPO / "var" / "services" / "s3" / "data"  # where scripts/services keeps SeaweedFS's volumes


def sse_settings(services: dict[str, str], **kw: object) -> Settings:
    env = {k.removeprefix("CLAIMLENS_").lower(): v for k, v in services.items() if k.startswith("CLAIMLENS_")}
    env.update(bucket=f"sse-{secrets.token_hex(4)}", **kw)
    return Settings(_env_file=None, **env)  # type: ignore[arg-type]


def stat_headers(settings: Settings, key: str) -> dict[str, str]:
    client = Minio(endpoint=settings.s3_endpoint, access_key=settings.s3_access_key.get_secret_value(),
                   secret_key=settings.s3_secret_key.get_secret_value(), secure=False)
    stat = client.stat_object(bucket_name=settings.bucket, object_name=key)
    return {k.lower(): v for k, v in stat.metadata.items()}


def on_disk(marker: bytes) -> bool:
    """Whether ``marker`` appears in plain text in the S3 server's volume files."""
    found = subprocess.run(["grep", "-rlaF", marker.decode(), str(S3_DATA)], check=False,
                           capture_output=True, timeout=120)
    return bool(found.stdout.strip())


def test_sse_s3_encrypts_our_puts_and_presigned_uploads_at_rest(services: dict[str, str]) -> None:
    settings = sse_settings(services, s3_sse="sse-s3")
    store = S3Store(settings)
    marker = f"CLAIMLENS-SSE-{secrets.token_hex(12)}".encode()
    data = os.urandom(20000) + marker + os.urandom(20000)  # random bytes: the server does not compress them
    store.put("t/put.bin", data)
    assert store.get("t/put.bin") == data  # reads need nothing special
    assert stat_headers(settings, "t/put.bin").get("x-amz-server-side-encryption") == "AES256"
    # the bucket was created with a default rule: a presigned PUT (no SSE header) is encrypted too
    url = store.presigned_put_url("t/presigned.bin", 60)
    assert httpx.put(url, content=data).status_code == 200
    assert stat_headers(settings, "t/presigned.bin").get("x-amz-server-side-encryption") == "AES256"
    plain = S3Store(sse_settings(services))  # a bucket without encryption, for contrast
    plain_marker = f"CLAIMLENS-PLAIN-{secrets.token_hex(12)}".encode()
    plain.put("t/plain.bin", os.urandom(20000) + plain_marker + os.urandom(20000))
    assert "x-amz-server-side-encryption" not in stat_headers(plain.settings, "t/plain.bin")
    if not S3_DATA.is_dir():
        pytest.skip(f"no SeaweedFS volumes at {S3_DATA} to look into (headers checked above)")
    assert on_disk(plain_marker), "the at-rest probe cannot see plain objects: it proves nothing"
    assert not on_disk(marker)


def test_sse_kms_needs_a_kms_the_stand_in_does_not_have(services: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="KMS_KEY_ID"):
        sse_settings(services, s3_sse="sse-kms")
    store = S3Store(sse_settings(services, s3_sse="sse-kms", s3_sse_kms_key_id="claimlens-test"))
    # SeaweedFS without a configured KMS answers 500: the put fails loudly, nothing is stored in clear
    with pytest.raises(StorageUnavailable):
        store.put("t/kms.bin", b"x" * 100)
    assert store.size("t/kms.bin") is None


class FailingDeletes:
    """The real store, whose deletes fail after ``budget`` of them (an outage in the middle of an erasure)."""

    def __init__(self, store: S3Store, budget: int) -> None:
        self.store, self.budget = store, budget

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.store, name)

    def delete(self, key: str) -> None:
        if self.budget <= 0:
            raise StorageUnavailable("object store unavailable: test outage")
        self.budget -= 1
        self.store.delete(key)


def test_interrupted_erasure_is_finished_by_a_retry(settings_env: dict[str, str], run_id: str) -> None:
    settings = get_settings()
    rt = Runtime(settings=settings, store=S3Store(settings))
    claim_id = f"ERASE-{run_id}"
    with session_scope(rt.db_url) as s:
        upsert_claim(s, ClaimFields(claim_id=claim_id, plate="沪B12345"), owner="it")
    for i in range(2):
        photo = store_photo(rt, claim_id, jpeg(f"{run_id}-erase{i}"), filename=f"{i}.jpg",
                            content_type="image/jpeg", meta=PhotoUploadMeta(stage=Stage.SURVEY))
        analyse_photo(rt, photo.photo_id)
    prefix = f"claims/{claim_id}/"
    assert len(rt.store.list(prefix)) >= 4
    broken = Runtime(settings=settings, store=FailingDeletes(rt.store, budget=1))  # type: ignore[arg-type]
    with pytest.raises(StorageUnavailable):
        delete_claim(broken, claim_id)
    with session_scope(rt.db_url) as s:
        assert s.get(Claim, claim_id).status == "deleting"  # type: ignore[union-attr]
    assert rt.store.list(prefix)  # some objects are left
    assert delete_claim(rt, claim_id) is True
    assert rt.store.list(prefix) == []
    with session_scope(rt.db_url) as s:
        assert s.get(Claim, claim_id) is None
        assert s.scalar(select(func.count()).select_from(Photo).where(Photo.claim_id == claim_id)) == 0
    assert delete_claim(rt, claim_id) is False
    # a photo task or a late presigned PUT writes after the erasure: the later sweep removes it
    rt.store.put(f"{prefix}photos/late/analysis.json", b"{}")
    assert sweep_erased_claim(rt, claim_id) == 1 and rt.store.list(prefix) == []
    # ... but never touches a claim created again under the same id
    with session_scope(rt.db_url) as s:
        upsert_claim(s, ClaimFields(claim_id=claim_id), owner="it")
    rt.store.put(f"{prefix}claim.json", b"{}")
    assert sweep_erased_claim(rt, claim_id) == 0 and rt.store.list(prefix) == [f"{prefix}claim.json"]
