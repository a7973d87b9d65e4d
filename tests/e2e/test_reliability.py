"""Crashes and outages with real processes: kill -9 a worker mid-claim; stop the S3 server or PostgreSQL
during a run. Nothing accepted may be lost and nothing may be half-stored."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest
from minio import Minio

from tests.conftest import REPO, TEST_DB
from tests.e2e.conftest import Stack
from tests.support.photos import jpeg

pytestmark = pytest.mark.e2e


def services(action: str, name: str) -> None:
    subprocess.run([str(REPO / "scripts" / "services"), action, name], check=True, stdout=subprocess.DEVNULL,
                   env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "CLAIMLENS_SERVICES_DB": TEST_DB})


def objects(stack: Stack, prefix: str) -> list[str]:
    env = stack.env
    client = Minio(endpoint=env["CLAIMLENS_S3_ENDPOINT"], access_key=env["CLAIMLENS_S3_ACCESS_KEY"],
                   secret_key=env["CLAIMLENS_S3_SECRET_KEY"], secure=False)
    return [o.object_name for o in client.list_objects(bucket_name=env["CLAIMLENS_BUCKET"], prefix=prefix,
                                                       recursive=True)]


def make_claim(c: httpx.Client, claim_id: str, n: int, size: tuple[int, int] = (640, 480)) -> list[str]:
    assert c.put(f"/v1/claims/{claim_id}", json={"loss_type": "collision"}).status_code == 201
    ids = []
    for i in range(n):
        r = c.post(f"/v1/claims/{claim_id}/photos", data={"stage": "survey"},
                   files={"file": (f"p{i}.jpg", jpeg(f"{claim_id}-{i}", size=size), "image/jpeg")})
        assert r.status_code == 201, r.text
        ids.append(r.json()["photo_id"])
    return ids


def assert_complete(stack: Stack, claim_id: str, photo_ids: list[str]) -> None:
    with stack.client() as c:
        report = c.get(f"/v1/claims/{claim_id}/report").json()
        listed = c.get(f"/v1/claims/{claim_id}/photos").json()
    assert sorted(p["photo_id"] for p in report["photos"]) == sorted(photo_ids)
    assert all(p["status"] == "analysed" for p in report["photos"]), report["photos"]
    assert all(p["status"] == "analysed" for p in listed)
    keys = objects(stack, f"claims/{claim_id}/")
    for pid in photo_ids:
        assert any(k.startswith(f"claims/{claim_id}/photos/{pid}/original") for k in keys)
        assert f"claims/{claim_id}/photos/{pid}/analysis.json" in keys
    assert f"claims/{claim_id}/report.html" in keys


def test_kill_9_worker_mid_claim_then_restart_completes(stack: Stack, run_id: str) -> None:
    claim_id = f"KILL-{run_id}"
    for w in list(stack.workers):  # upload while no worker runs, so the kill lands mid-claim
        stack.kill_worker(w)
        stack.workers.remove(w)
    with stack.client() as c:
        ids = make_claim(c, claim_id, 14, size=(2400, 1800))
        assert c.post(f"/v1/claims/{claim_id}/submit").status_code == 202
        worker = stack.start_worker("doomed")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = [p for p in c.get(f"/v1/claims/{claim_id}/photos").json() if p["status"] == "analysed"]
            if done:
                break
            time.sleep(0.05)
        assert done and len(done) < len(ids), "the kill must land in the middle of the claim"
    stack.kill_worker(worker)  # SIGKILL to the main process and the pool children
    stack.workers.remove(worker)
    stack.start_worker("survivor")
    stack.wait_final(claim_id, timeout=240)
    assert_complete(stack, claim_id, ids)


def test_s3_outage_during_run_retries_and_upload_answers_503(stack: Stack, run_id: str) -> None:
    claim_id = f"S3OUT-{run_id}"
    with stack.client() as c:
        ids = make_claim(c, claim_id, 6, size=(1600, 1200))
        services("stop", "s3")
        try:
            assert c.post(f"/v1/claims/{claim_id}/submit").status_code == 202  # DB + broker are up
            r = c.post(f"/v1/claims/{claim_id}/photos", data={"stage": "survey"},
                       files={"file": ("late.jpg", jpeg(f"{run_id}-late"), "image/jpeg")})
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "unavailable"
            time.sleep(3)  # tasks hit the outage and go into retry
            assert not c.get(f"/v1/claims/{claim_id}/status").json()["final"]
        finally:
            services("start", "s3")
        listed = c.get(f"/v1/claims/{claim_id}/photos").json()
        assert sorted(p["photo_id"] for p in listed) == sorted(ids)  # the refused upload left no row
    stack.wait_final(claim_id, timeout=240)
    assert_complete(stack, claim_id, ids)


def test_database_outage_upload_503_nothing_stored_then_recovers(stack: Stack, run_id: str) -> None:
    claim_id = f"DBOUT-{run_id}"
    with stack.client() as c:
        ids = make_claim(c, claim_id, 4)
        services("stop", "postgres")
        try:
            r = c.post(f"/v1/claims/{claim_id}/photos", data={"stage": "survey"},
                       files={"file": ("x.jpg", jpeg(f"{run_id}-dbout"), "image/jpeg")})
            assert r.status_code == 503, r.text
            stray = [k for k in objects(stack, f"claims/{claim_id}/photos/") if k.split("/")[3] not in ids]
            assert stray == []  # the refused upload left no object behind
        finally:
            services("start", "postgres")
        deadline = time.monotonic() + 60
        while True:  # the API's pool reconnects (pool_pre_ping)
            r = c.post(f"/v1/claims/{claim_id}/submit")
            if r.status_code == 202 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert r.status_code == 202, r.text
    stack.wait_final(claim_id, timeout=240)
    assert_complete(stack, claim_id, ids)
